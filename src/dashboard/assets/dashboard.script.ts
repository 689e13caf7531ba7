/**
 * The dashboard's only script (served as a file by the dashboard; the pages work without it, read-only). It shows
 * times in the browser's zone, keeps pages live over server-sent events by reloading their `data-live` regions, and
 * sends operator actions as JSON with the CSRF token. Plain ES2017, no dependencies.
 */
export const DASHBOARD_SCRIPT = String.raw`(function () {
  'use strict';
  var body = document.body;
  var base = new URL(body.getAttribute('data-base') || './', location.href);
  var tokenMeta = document.querySelector('meta[name="cairn-csrf"]');
  var csrf = tokenMeta ? tokenMeta.getAttribute('content') : '';

  function url(path) { return new URL(path, base).toString(); }
  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function enhance(root) {
    root.querySelectorAll('time[datetime]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (isNaN(d.getTime())) return;
      el.title = el.getAttribute('datetime');
      el.textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
        pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) +
        (el.hasAttribute('data-ms') ? '.' + String(d.getMilliseconds()).padStart(3, '0') : '');
    });
    root.querySelectorAll('[data-left]').forEach(function (el) {
      el.style.left = el.getAttribute('data-left') + '%';
      el.style.width = el.getAttribute('data-width') + '%';
    });
  }

  function toast(text, bad) {
    var box = document.getElementById('toast');
    var item = document.createElement('div');
    item.className = 't' + (bad ? ' bad' : '');
    item.textContent = text;
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, bad ? 8000 : 4000);
  }

  function request(method, path, payload) {
    var init = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      init.headers['X-Cairn-CSRF'] = csrf;
      init.body = JSON.stringify(payload || {});
    }
    return fetch(url(path), init).then(function (res) {
      return res.text().then(function (text) {
        var data = {};
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { message: text }; }
        if (!res.ok) throw new Error(data.message || ('HTTP ' + res.status));
        return data;
      });
    });
  }

  // Live regions ---------------------------------------------------------------------------------------------------
  function busy(region) {
    var active = document.activeElement;
    if (active && region.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return true;
    return !!region.querySelector('details[open], form[data-dirty]');
  }

  var refreshing = false, again = false, timer = null;
  function refresh() {
    if (refreshing) { again = true; return Promise.resolve(); }
    refreshing = true;
    return fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } }).then(function (res) {
      if (!res.ok) return;
      return res.text().then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (region) {
          var next = doc.querySelector('[data-live="' + region.getAttribute('data-live') + '"]');
          if (!next || busy(region)) return;
          var fresh = document.importNode(next, true);
          region.replaceWith(fresh);
          enhance(fresh);
        });
        body.setAttribute('data-refreshed', String(Date.now()));
      });
    }).catch(function () {}).then(function () {
      refreshing = false;
      if (again) { again = false; schedule(); }
    });
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 250);
  }

  // NOTE: a hidden tab closes its stream: browsers allow few connections per host over HTTP/1.1, and open streams
  // of background tabs would use them up.
  var stream = body.getAttribute('data-stream');
  var live = document.getElementById('live');
  var source = null;
  function setLive(on) { if (live) { live.classList.toggle('on', on); live.classList.toggle('off', !on); } }
  function connect() {
    if (source || !stream || !window.EventSource) return;
    source = new EventSource(url(stream));
    source.addEventListener('hello', function () { setLive(true); });
    source.onmessage = schedule;
    source.onerror = function () { setLive(false); };
  }
  function disconnect() { if (source) { source.close(); source = null; } }
  connect();
  window.addEventListener('pagehide', disconnect);
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) disconnect();
    else if (stream) { connect(); schedule(); }
  });

  // Confirmation dialog --------------------------------------------------------------------------------------------
  function ask(text, option, okLabel) {
    var dialog = document.getElementById('confirm');
    var box = dialog.querySelector('.confirm-option');
    var check = box.querySelector('input');
    dialog.querySelector('.confirm-text').textContent = text;
    dialog.querySelector('.confirm-ok').textContent = okLabel || 'Confirm';
    box.hidden = !option;
    if (option) { box.querySelector('span').textContent = option; check.checked = true; }
    return new Promise(function (resolve) {
      dialog.addEventListener('close', function onClose() {
        dialog.removeEventListener('close', onClose);
        resolve(dialog.returnValue === 'ok' ? { checked: check.checked } : null);
      });
      dialog.returnValue = '';
      dialog.showModal();
    });
  }

  // Actions --------------------------------------------------------------------------------------------------------
  function runPath(el, action) {
    var holder = el.closest('[data-run-id]');
    return 'api/runs/' + encodeURIComponent(holder.getAttribute('data-run-id')) + '/' + action;
  }

  function done(message) {
    toast(message);
    return refresh();
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-action]');
    if (button) {
      var action = button.getAttribute('data-action');
      var go = action === 'cancel'
        ? ask('Cancel this run? Its running step is aborted.', 'Run the compensations of completed steps', 'Cancel run')
          .then(function (answer) { return answer && { compensate: answer.checked }; })
        : Promise.resolve({});
      go.then(function (payload) {
        if (!payload) return;
        button.disabled = true;
        return request('POST', runPath(button, action), payload)
          .then(function (res) { return done(action + (res.outcome === 'noop' ? ': nothing to do' : ': done')); })
          .catch(function (e) { button.disabled = false; toast(e.message, true); });
      });
      return;
    }
    var bulk = event.target.closest('button[data-bulk]');
    if (bulk) bulkAction(bulk);
  });

  function bulkAction(button) {
    var action = button.getAttribute('data-bulk');
    var filter = JSON.parse(button.closest('[data-filter]').getAttribute('data-filter'));
    var params = new URLSearchParams();
    Object.keys(filter).forEach(function (k) { if (filter[k]) params.set(k, filter[k]); });
    var qs = params.toString();
    request('GET', 'api/bulk/' + action + (qs ? '?' + qs : '')).then(function (preview) {
      if (preview.count === 0) { toast('No run matching this filter can be ' + (action === 'cancel' ? 'cancelled.' : 'retried.')); return; }
      var text = (action === 'cancel' ? 'Cancel ' : 'Retry ') + preview.count + ' run' + (preview.count === 1 ? '' : 's') +
        ' matching this filter' + (preview.capped ? ' (the first ' + preview.count + '; run it again for the rest)' : '') + '?';
      return ask(text, action === 'cancel' ? 'Run the compensations of completed steps' : null, (action === 'cancel' ? 'Cancel ' : 'Retry ') + preview.count)
        .then(function (answer) {
          if (!answer) return;
          var payload = { filter: filter, confirmCount: preview.count };
          if (action === 'cancel') payload.compensate = answer.checked;
          return request('POST', 'api/bulk/' + action, payload).then(function (r) {
            var text = (action === 'cancel' ? 'Cancelled ' : 'Retried ') + r.done + ' of ' + r.matched + ' runs' +
              (r.skipped ? ', ' + r.skipped + ' changed meanwhile' : '') + (r.failed.length ? ', ' + r.failed.length + ' failed' : '');
            toast(text, r.failed.length > 0);
            return refresh();
          });
        });
    }).catch(function (e) { toast(e.message, true); });
  }

  function checkJson(area) {
    var message = '';
    if (area.value.trim() !== '') {
      try { JSON.parse(area.value); } catch (e) { message = 'Not valid JSON: ' + e.message; }
    } else if (area.required) message = 'Enter a JSON value (null is fine).';
    area.setCustomValidity(message);
    var out = area.closest('form').querySelector('.json-error');
    if (out) out.textContent = message;
    return message === '';
  }

  document.addEventListener('input', function (event) {
    var form = event.target.closest('form[data-action]');
    if (form) form.setAttribute('data-dirty', '1');
    if (event.target.matches('textarea[data-json]')) checkJson(event.target);
  });

  document.addEventListener('submit', function (event) {
    var form = event.target.closest('form[data-action]');
    if (!form) return;
    event.preventDefault();
    var areas = form.querySelectorAll('textarea[data-json]');
    for (var i = 0; i < areas.length; i++) if (!checkJson(areas[i])) { areas[i].focus(); return; }
    var action = form.getAttribute('data-action');
    var payload = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (el.matches('textarea[data-json]')) { if (el.value.trim() !== '') payload[el.name] = JSON.parse(el.value); }
      else if (el.value !== '') payload[el.name] = el.value;
    });
    var submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    request('POST', runPath(form, action), payload).then(function (res) {
      form.removeAttribute('data-dirty');
      var details = form.closest('details');
      if (details) details.open = false;
      submit.disabled = false;
      if (action === 'fork') { location.href = url('runs/' + encodeURIComponent(res.runId)); return; }
      return done(action === 'signal' ? 'Signal sent' : 'Step skipped');
    }).catch(function (e) { submit.disabled = false; toast(e.message, true); });
  });

  // Filters: the browser's zone for local times; empty fields left out of the address.
  var filters = document.querySelector('form.filters');
  if (filters) {
    filters.addEventListener('submit', function () {
      filters.elements.tz.value = String(new Date().getTimezoneOffset());
      if (!filters.elements.from.value && !filters.elements.to.value) filters.elements.tz.value = '';
      Array.prototype.forEach.call(filters.elements, function (el) { if (el.name && el.value === '') el.disabled = true; });
    });
    window.addEventListener('pageshow', function () {
      Array.prototype.forEach.call(filters.elements, function (el) { el.disabled = false; });
    });
  }

  enhance(document);
})();
`;
