// Runs editors/vscode/extension.js with stand-ins for the `vscode` and `vscode-languageclient/node`
// modules (only VS Code has the real ones) and prints what it asked for: which server, over what
// transport, for which documents.  Used by tests/test_textmate.py.
"use strict";
const Module = require("module");
const path = require("path");

const seen = {};
let settings = {};
const stubs = {
  vscode: {
    workspace: {
      getConfiguration: (section) => ({ get: (key, fallback) => settings[`${section}.${key}`] ?? fallback }),
      createFileSystemWatcher: (glob) => ({ glob }),
    },
  },
  "vscode-languageclient/node": {
    TransportKind: { stdio: "stdio", ipc: "ipc", pipe: "pipe", socket: "socket" },
    LanguageClient: class {
      constructor(id, name, server, client) {
        Object.assign(seen, { id, name, server, documentSelector: client.documentSelector,
                              initializationOptions: client.initializationOptions,
                              configurationSection: client.synchronize.configurationSection });
      }
      start() { seen.started = true; return Promise.resolve(); }
      stop() { seen.stopped = true; return Promise.resolve(); }
      dispose() {}
    },
  },
};
const load = Module._load;
Module._load = function (request, ...rest) {
  return Object.prototype.hasOwnProperty.call(stubs, request) ? stubs[request] : load.call(this, request, ...rest);
};

async function activateWith(values) {
  settings = values;
  const file = path.join(__dirname, "..", "vscode", "extension.js");
  delete require.cache[require.resolve(file)];
  const extension = require(file);
  await extension.activate({ subscriptions: [] });
  await extension.deactivate();
  return { ...seen };
}

(async () => {
  const result = await activateWith({});
  result.custom = await activateWith({ "convplan.server.path": "/opt/venv/bin/convplan",
                                       "convplan.server.args": ["lsp", "--x"], "convplan.sizes": { H: 224 } });
  process.stdout.write(JSON.stringify(result));
})().catch((err) => { console.error(err && err.stack || String(err)); process.exit(1); });
