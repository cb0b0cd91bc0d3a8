// The convplan extension: colours come from the TextMate grammar (syntaxes/); everything else
// (diagnostics, inlay hints with shapes, hover, completion, quick fixes) from the language server,
// `convplan lsp`, which this starts over stdio for .plan files.
"use strict";
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function serverOptions() {
  const config = vscode.workspace.getConfiguration("convplan");
  return {
    command: config.get("server.path", "convplan"),
    args: config.get("server.args", ["lsp"]),
    transport: TransportKind.stdio,
  };
}

function activate(context) {
  const clientOptions = {
    documentSelector: [
      { scheme: "file", language: "plan" },
      { scheme: "untitled", language: "plan" },
    ],
    // example sizes for hover (`{"H": 224}`); a change is sent as workspace/didChangeConfiguration
    initializationOptions: { sizes: vscode.workspace.getConfiguration("convplan").get("sizes", {}) },
    synchronize: {
      configurationSection: "convplan",
      // imported plans change diagnostics too: tell the server when any .plan file changes on disk
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.plan"),
    },
  };
  client = new LanguageClient("convplan", "convplan", serverOptions(), clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client === undefined ? undefined : client.stop();
}

module.exports = { activate, deactivate };
