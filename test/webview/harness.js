// Test harness for dist/webview/panel.js, loaded before it (nonce'd, like the host's page):
// - applies a VS Code theme (body class + variables from themes.css), ?theme=dark|light|hc;
// - stubs acquireVsCodeApi(): records posted messages in window.__posted, persists setState in
//   sessionStorage (so a reload restores it like VS Code does when a view is hidden/shown);
// - records CSP violations in window.__cspViolations;
// - simulates the extension host (unless ?host=0): answers `ready` with a `state`, handles
//   selectAdapter / run (progress + runFinished + state) / clearHistory.
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const theme = params.get('theme') || 'dark';
  const kind = { dark: 'vscode-dark', light: 'vscode-light', hc: 'vscode-high-contrast', 'hc-light': 'vscode-high-contrast-light' }[theme] || 'vscode-dark';
  document.body.classList.add(kind);
  document.body.dataset.vscodeThemeKind = kind;

  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, source: e.sourceFile, line: e.lineNumber });
  });

  const STATE_KEY = 'taskling-harness-state';
  window.__posted = [];
  let acquired = false;
  window.acquireVsCodeApi = function () {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return {
      postMessage(m) {
        window.__posted.push(JSON.parse(JSON.stringify(m)));
        if (params.get('host') !== '0') setTimeout(() => host(m), 0);
      },
      getState() { const s = sessionStorage.getItem(STATE_KEY); return s ? JSON.parse(s) : undefined; },
      setState(s) { sessionStorage.setItem(STATE_KEY, JSON.stringify(s)); return s; },
    };
  };

  // ---- simulated extension host ----
  const fx = window.__fixtures;
  const hostState = {
    adapters: fx.adapters, problems: fx.problems, selectedAdapterId: 'builtin.sentiment',
    engine: fx.engineReady, history: fx.history.slice(), hasSelection: params.get('selection') !== '0',
    quality: window.__qualityState ? window.__qualityState() : undefined,
  };
  if (params.get('engine') === 'notSetUp') hostState.engine = { kind: 'notSetUp' };
  let nextRunId = 4;
  const send = (m) => window.postMessage(JSON.parse(JSON.stringify(m)), '*');
  const sendState = () => send({ type: 'state', state: hostState });
  const runDelay = Number(params.get('runDelay') || 150);

  function host(m) {
    if (window.__qualityHost && window.__qualityHost(m, send)) return; // qualityFixtures.js
    switch (m.type) {
      case 'ready':
        // A malformed message first: the panel must drop it.
        send({ type: 'state', state: 'not a state' });
        send({ type: 'progress', runId: -1 });
        sendState();
        break;
      case 'selectAdapter':
        if (hostState.adapters.some((a) => a.id === m.adapterId)) { hostState.selectedAdapterId = m.adapterId; sendState(); }
        break;
      case 'run': {
        const a = hostState.adapters.find((x) => x.id === m.adapterId);
        if (!a) return;
        const runId = nextRunId++;
        hostState.engine = { kind: 'running', adapterId: a.id };
        sendState();
        send({ type: 'progress', runId, message: 'prefill 187 tokens (152 reused)' });
        setTimeout(() => send({ type: 'progress', runId, message: 'decoding', newTokens: 12, tokensPerSecond: 54.3 }), runDelay / 2);
        setTimeout(() => {
          const result = JSON.parse(JSON.stringify(fx.results[a.task]));
          result.provenance.adapter = { id: a.id, version: a.version };
          const record = { runId, adapterId: a.id, adapterName: a.name, task: a.task, input: fx.inputs[a.task], startedAt: Date.now(), result };
          hostState.history.push(record);
          hostState.engine = fx.engineReady;
          send({ type: 'runFinished', record });
          sendState();
        }, runDelay);
        break;
      }
      case 'clearHistory':
        hostState.history = [];
        sendState();
        break;
      default:
        break; // openAdapterFile, openJson, replaceSelection, revealSpan, cancel, setUpModel: recorded only
    }
  }
})();
