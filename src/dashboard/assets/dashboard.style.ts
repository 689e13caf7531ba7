/** The dashboard's style sheet (served as a file by the dashboard: no build step, no CDN). */
export const DASHBOARD_STYLE = String.raw`
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#6b7385;--line:#dfe3ea;--panel:#fff;--accent:#2f5bd3;--danger:#c23030;
--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14171d;--fg:#e3e7ee;--muted:#8c94a6;--line:#2a303b;--panel:#1b1f27;--accent:#7ea2ff;--danger:#ff6b6b}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.top{display:flex;align-items:center;gap:18px;padding:10px 20px;background:var(--panel);border-bottom:1px solid var(--line);position:sticky;top:0;z-index:2}
.brand{font-weight:700;font-size:16px;color:var(--fg)}
.top nav{display:flex;gap:14px}.top nav a[aria-current]{font-weight:600;color:var(--fg);border-bottom:2px solid var(--accent)}
.live{margin-left:auto;font-size:12px;color:var(--muted)}.live::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;background:#999;margin-right:6px}
.live.on::before{background:#1f9d55}.live.off::before{background:#d9822b}
.ro{font-size:12px;padding:2px 8px;border-radius:10px;background:var(--line)}
main{padding:16px 20px 40px;max-width:1400px;margin:0 auto}
h1{font-size:20px;margin:6px 0 14px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}h2{font-size:15px;margin:0 0 10px}
.muted{color:var(--muted)}.small{font-size:12px}.mono,.id{font-family:var(--mono)}
.crumbs{margin:0;color:var(--muted)}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 14px}
.error-panel{border-color:var(--danger)}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;margin-bottom:12px}
.filters label,.action-form label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
input,select,textarea,button,.button{font:inherit;color:var(--fg);background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:5px 8px}
.filters input,.filters select,.filters button,.filters .button{height:32px}
textarea{font-family:var(--mono);font-size:12px;width:100%;min-width:280px}
button,.button{cursor:pointer;background:var(--accent);border-color:var(--accent);color:#fff;font-weight:500;display:inline-block}
button.secondary,.button.secondary{background:var(--panel);color:var(--fg);border-color:var(--line)}
button.danger{background:var(--danger);border-color:var(--danger)}button:disabled{opacity:.5;cursor:wait}
.counts{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:0 0 12px}
.count{padding:3px 9px;border-radius:12px;background:var(--panel);border:1px solid var(--line);color:var(--fg);font-size:12px}
.count b{margin-left:3px}.count.active{outline:2px solid var(--accent)}
.bulk{display:flex;gap:8px;margin:0 0 12px}
table{width:100%;border-collapse:collapse;background:var(--panel)}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}
table.runs{border:1px solid var(--line);border-radius:8px}
td.id{max-width:280px;overflow-wrap:anywhere}td.error-cell{max-width:420px;overflow-wrap:anywhere;font-size:12px}
td.empty{text-align:center;color:var(--muted);padding:24px}
.err-name{color:var(--danger);font-weight:600}
.pager{display:flex;gap:16px;padding:10px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#8a93a6;color:#fff}
.s-pending{--c:#8a93a6}.s-running{--c:#2f6fd3}.s-sleeping{--c:#7655c8}.s-waiting{--c:#c98a0b}.s-paused{--c:#687386}
.s-compensating{--c:#d9722b}.s-completed{--c:#1f9d55}.s-compensated{--c:#138a8a}.s-failed{--c:#c23030}.s-cancelled{--c:#4d5566}
.badge[class*=" s-"]{background:var(--c)}.count[class*=" s-"]{border-left:4px solid var(--c)}
.summary dl{display:flex;flex-wrap:wrap;gap:6px 26px;margin:0 0 14px}.summary dt{font-size:12px;color:var(--muted)}.summary dd{margin:0}
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin:0 0 14px}
.action-form{border:1px solid var(--line);border-radius:6px;background:var(--panel)}
.action-form summary{cursor:pointer;padding:5px 10px;font-weight:500}
.action-form form{display:flex;flex-direction:column;gap:8px;padding:8px 10px 10px;min-width:320px}
.json-error{color:var(--danger);font-size:12px;margin:0;min-height:1em}
.io{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px}
.value{position:relative}
pre.json{margin:0;padding:8px 10px;background:var(--bg);border-radius:6px;font:12px/1.5 var(--mono);white-space:pre-wrap;overflow-wrap:anywhere;max-height:420px;overflow:auto}
.v-str{color:#a1470d}.v-num{color:#1f6feb}.v-bool,.v-null{color:#8250df}.v-date{color:#0a7d5a}.v-type{color:var(--muted)}.v-key{color:var(--fg)}.v-cut{color:var(--muted);font-style:italic}
@media (prefers-color-scheme:dark){.v-str{color:#f0a36b}.v-num{color:#79b8ff}.v-bool,.v-null{color:#d2a8ff}.v-date{color:#56d4a4}}
.show-all{font-size:12px}
.timeline{list-style:none;margin:0;padding:0}
.step{border-left:3px solid var(--line);padding:6px 0 10px 12px;margin-left:4px}
.step-head{display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.track{position:relative;height:8px;background:var(--bg);border-radius:4px;margin:6px 0}
.bar{position:absolute;top:0;height:8px;border-radius:4px;min-width:3px;background:#1f9d55}
.bar.o-failed{background:#c23030}.bar.k-compensation{background:#d9722b}
.tries{margin:4px 0;padding-left:18px;font-size:12px}.tries .o-failed{color:var(--danger)}
.label{font-size:12px;color:var(--muted);margin-right:6px}
.heartbeat,.step-error{margin:6px 0}.step-output summary{cursor:pointer;font-size:12px;color:var(--muted)}
.signals{padding-left:18px}.signals li{margin-bottom:8px}
table.history td{font-size:12px}code.detail{font:11px var(--mono);color:var(--muted);margin-left:6px;overflow-wrap:anywhere}
.msg{white-space:pre-wrap;overflow-wrap:anywhere}
dialog{border:1px solid var(--line);border-radius:8px;background:var(--panel);color:var(--fg);max-width:460px}
dialog::backdrop{background:rgba(0,0,0,.35)}dialog .buttons{display:flex;justify-content:flex-end;gap:8px;margin-top:12px}
.confirm-option{display:flex;gap:6px;align-items:center}
#toast{position:fixed;right:16px;bottom:16px;max-width:420px;z-index:5}
#toast .t{background:var(--panel);border:1px solid var(--line);border-left:4px solid #1f9d55;border-radius:6px;padding:8px 12px;margin-top:8px;box-shadow:0 2px 10px rgba(0,0,0,.15)}
#toast .t.bad{border-left-color:var(--danger)}
`;
