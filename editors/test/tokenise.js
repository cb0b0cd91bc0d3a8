// Tokenises plan texts with VS Code's own TextMate engine (vscode-textmate on the Oniguruma regex
// library, as the editor runs it), for tests/test_textmate.py.
//
// stdin: {"grammar": "path/to/plan.tmLanguage.json", "texts": ["plan ...", ...]}
// stdout: per text, per line (split at "\n"), the tokens as [start, end, scope, scope, ...], offsets in
// UTF-16 code units as vscode-textmate counts them.
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

async function main() {
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  const wasm = path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm");
  await oniguruma.loadWASM(fs.readFileSync(wasm).buffer);
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => scopeName === "source.plan"
      ? vsctm.parseRawGrammar(fs.readFileSync(input.grammar, "utf8"), input.grammar) : null,
  });
  const grammar = await registry.loadGrammar("source.plan");
  const result = input.texts.map((text) => {
    let stack = vsctm.INITIAL;
    return text.split("\n").map((line) => {
      const r = grammar.tokenizeLine(line, stack);
      stack = r.ruleStack;
      return r.tokens.map((t) => [t.startIndex, Math.min(t.endIndex, line.length), ...t.scopes]);
    });
  });
  process.stdout.write(JSON.stringify(result));
}

main().catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });
