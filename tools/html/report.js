/*
 * report.js — draws cymem-report's HTML page from the report data in #cmt-data: the header,
 * the sortable scope table, the flame graph (inline SVG), live bytes over time (a stacked
 * area chart), the largest leak sites and the bad frees, for the process chosen at the top.
 * It uses no library and loads nothing, and it puts strings from the report into the page as
 * text only (textContent and attribute values), never as markup.
 */
(function () {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var ROW = 18;          /* flame graph row height, px */
  var MIN_WIDTH = 0.75;  /* narrower frames are not drawn (their total still counts) */
  var PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948',
                 '#b07aa1', '#ff9da7', '#9c755f', '#2f5fb3', '#8cd17d', '#d37295',
                 '#499894', '#f1ce63', '#86bcb6', '#a0cbe8'];
  var OTHER_COLOUR = '#aab1bd';

  var data = JSON.parse(document.getElementById('cmt-data').textContent);
  var frames = data.frames;
  var views = [];
  var state = { view: 0, mode: 'bytes', tree: null, zoom: null, query: null,
                sortKey: null, sortDir: 0 };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs)
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null)
      e.textContent = String(text);
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs)
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function clear(e) {
    while (e.firstChild)
      e.removeChild(e.firstChild);
  }

  /* The same sizes as the text view: "1023 B", "1.0 KiB", "12.3 MiB"... */
  function human(bytes) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    if (bytes < 1024)
      return bytes + ' B';
    var u = 0, v = bytes;
    while (v >= 1024 && u < 6) {
      v /= 1024;
      u++;
    }
    var tenths = Math.round(v * 10);
    if (tenths >= 10240 && u < 6) {
      u++;
      tenths = Math.round(v / 1024 * 10);
    }
    return (tenths / 10).toFixed(1) + ' ' + units[u];
  }

  /* 1,234,567: by hand, since toLocaleString costs tens of milliseconds the first time. */
  function count(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  function plural(n, one, many) {
    return n === 1 ? one : many;
  }

  function percent(part, whole) {
    if (!whole)
      return '0%';
    var p = part * 100 / whole;
    return (p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + '%';
  }

  function baseName(path) {
    var i = path.lastIndexOf('/');
    return i >= 0 && i + 1 < path.length ? path.slice(i + 1) : path;
  }

  /* A frame's location: file:line, else module+offset. */
  function location(f) {
    if (f[2])
      return f[2] + ':' + f[3];
    if (f[4])
      return baseName(f[4]) + '+0x' + f[5].toString(16);
    return '';
  }

  /* An argument as a shell would take it back. */
  function shellWord(a) {
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(a))
      return a;
    return "'" + a.replace(/'/g, "'\\''") + "'";
  }

  function scopeColour(i) {
    return i === null || i === undefined ? OTHER_COLOUR : PALETTE[i % PALETTE.length];
  }

  /* ---- the process picker ------------------------------------------------------------- */

  data.processes.forEach(function (p) {
    var pad = '';
    for (var d = 0; d < p.depth; d++)
      pad += '\u00a0\u00a0';
    var rel = p.relation === 'fork' ? ' (fork)' : p.relation === 'exec' ? ' (exec)' : '';
    views.push({ p: p, label: pad + 'process ' + p.pid + ': ' + baseName(p.exe || '?') + rel +
                 ' \u2014 ' + p.ended + (p.superseded ? ' [superseded]' : '') });
  });
  if (data.total)
    views.push({ p: data.total.data,
                 label: 'all ' + data.total.processes + ' processes (total)' });

  /* ---- header ------------------------------------------------------------------------- */

  function fact(dl, key, value, cls) {
    dl.appendChild(el('dt', null, key));
    var dd = el('dd', cls ? { 'class': cls } : null, value);
    dl.appendChild(dd);
    return dd;
  }

  function card(box, key, value, sub, cls) {
    var c = el('div', { 'class': 'card' });
    c.appendChild(el('div', { 'class': 'k' }, key));
    c.appendChild(el('div', { 'class': 'v' + (cls ? ' ' + cls : '') }, value));
    if (sub)
      c.appendChild(el('div', { 'class': 'muted' }, sub));
    box.appendChild(c);
  }

  function drawHeader(p) {
    var title = p.total ? 'Total of ' + data.total.processes + ' processes'
                        : 'process ' + p.pid + ': ' + (p.exe || '(unknown executable)');
    $('title').textContent = title;
    var dl = $('facts');
    clear(dl);
    if (!p.total) {
      fact(dl, 'command', p.argv.length ? p.argv.map(shellWord).join(' ') : '(unknown)');
      var started = p.relation === 'fork' ? 'forked by process ' + p.parent + ' (' +
                    p.parent_exe + ')'
                  : p.relation === 'exec' ? 'by exec from ' + p.parent_exe + ', same pid'
                  : 'by process ' + p.ppid;
      fact(dl, 'started', started + (p.start_ms ? ', ' +
           new Date(p.start_ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : ''));
      fact(dl, 'ended', p.ended, p.bad_end ? 'bad' : null);
      if (p.label)
        fact(dl, 'snapshot', p.label);
      if (p.truncated)
        fact(dl, 'warning', 'the report was cut short; what follows is what could be read',
             'bad');
      if (p.superseded)
        fact(dl, 'note', 'a later report of this process follows; this one is not in the total');
    } else {
      fact(dl, 'what', 'scopes added up by name and kind, leak sites by the code their stacks ' +
           'run through; leaks only of the processes that exited');
    }
    var t = p.totals, box = $('totals');
    clear(box);
    card(box, 'allocations', count(t.allocations), human(t.bytes_allocated));
    card(box, 'frees', count(t.frees));
    card(box, 'live at end', human(t.live_bytes),
         count(t.live_blocks) + ' ' + plural(t.live_blocks, 'block', 'blocks'),
         t.live_bytes && p.final ? 'bad' : null);
    card(box, 'peak live', human(t.peak_live_bytes), p.total ? 'largest process' : null);
    var bad = t.invalid_frees + t.double_frees + t.stale_frees;
    card(box, 'bad frees', count(bad), t.invalid_frees + ' invalid, ' + t.double_frees +
         ' double, ' + t.stale_frees + ' stale', bad ? 'bad' : null);
    if (p.hidden_sites || p.suppressed_sites)
      card(box, 'leak sites not shown', count(p.hidden_sites + p.suppressed_sites),
           p.suppressed_sites + ' suppressed, ' + p.hidden_sites + ' filtered');
  }

  /* ---- the scope table ---------------------------------------------------------------- */

  function columns(p) {
    var live = p.final ? 'leaked' : 'live';
    /* As in the text view, pairs of columns share a title above them. */
    return [
      { key: 'name', title: 'scope', text: true },
      { key: 'kind', title: 'kind', text: true },
      { key: 'instances', title: 'instances' },
      { key: 'allocations', title: 'blocks', group: 'allocated' },
      { key: 'bytes_allocated', title: 'bytes', bytes: true, group: 'allocated' },
      { key: 'frees', title: 'frees' },
      { key: 'leaked_blocks', title: 'blocks', leak: true, group: live },
      { key: 'leaked_bytes', title: 'bytes', bytes: true, leak: true, group: live },
      { key: 'outlived_blocks', title: 'outlived' },
      { key: 'bulk_freed_blocks', title: 'blocks', group: 'bulk-freed' },
      { key: 'bulk_freed_bytes', title: 'bytes', bytes: true, group: 'bulk-freed' },
      { key: 'peak_live_bytes', title: 'peak live', bytes: true }
    ];
  }

  function cell(col, value, scopeIndex) {
    var td = el('td', { 'class': col.text ? 'text' : 'num' });
    if (col.text) {
      if (col.key === 'name' && scopeIndex !== undefined) {
        var sw = el('span', { 'class': 'swatch' });
        sw.style.background = scopeColour(scopeIndex);
        td.appendChild(sw);
      }
      td.appendChild(document.createTextNode(value));
    } else {
      td.setAttribute('data-value', String(value));
      td.textContent = col.bytes ? human(value) : count(value);
      if (col.bytes)
        td.title = count(value) + ' bytes';
      if (col.leak && value)
        td.className += ' leak';
    }
    return td;
  }

  function drawScopes(p) {
    var cols = columns(p);
    var thead = $('scopes').tHead;
    clear(thead);
    var top = el('tr', { 'class': 'groups' }), head = el('tr');
    thead.appendChild(top);
    thead.appendChild(head);
    cols.forEach(function (c, i) {
      var th = el('th', { 'data-key': c.key, 'class': c.text ? 'text' : 'num', scope: 'col' },
                  c.title);
      if (c.group) {
        if (i === 0 || cols[i - 1].group !== c.group)
          top.appendChild(el('th', { colspan: '2', scope: 'colgroup', 'class': 'group' },
                             c.group));
      } else {
        /* A column without a group title spans both rows. */
        th.setAttribute('rowspan', '2');
        top.appendChild(th);
      }
      if (state.sortKey === c.key)
        th.setAttribute('aria-sort', state.sortDir > 0 ? 'ascending' : 'descending');
      th.addEventListener('click', function () {
        if (state.sortKey === c.key)
          state.sortDir = -state.sortDir;
        else {
          state.sortKey = c.key;
          state.sortDir = c.text ? 1 : -1;
        }
        drawScopes(p);
      });
      if (c.group)
        head.appendChild(th);
    });
    var rows = p.scopes.map(function (s, i) { return { s: s, i: i }; });
    if (state.sortKey) {
      var key = state.sortKey, dir = state.sortDir;
      rows.sort(function (a, b) {
        var x = a.s[key], y = b.s[key];
        var c = typeof x === 'string' ? x.localeCompare(y) : x - y;
        return c ? c * dir : a.i - b.i;
      });
    }
    var body = $('scopes').tBodies[0];
    clear(body);
    rows.forEach(function (r) {
      var tr = el('tr', { 'data-scope': String(r.i) });
      cols.forEach(function (c) { tr.appendChild(cell(c, r.s[c.key], r.i)); });
      body.appendChild(tr);
    });
    var foot = $('scopes').tFoot;
    clear(foot);
    if (p.scopes.length > 1) {
      var tr = el('tr');
      cols.forEach(function (c) {
        if (c.key === 'name')
          tr.appendChild(el('td', { 'class': 'text' }, 'all scopes'));
        else if (c.text)
          tr.appendChild(el('td', { 'class': 'text' }, ''));
        else if (c.key === 'peak_live_bytes')
          tr.appendChild(el('td', { 'class': 'num' }, ''));
        else
          tr.appendChild(cell(c, p.scopes.reduce(function (a, s) { return a + s[c.key]; }, 0)));
      });
      foot.appendChild(tr);
    }
  }

  /* ---- the flame graph ---------------------------------------------------------------- */

  var NONE = [];

  /* Most nodes are leaves: their map of children and list of places come when needed. */
  function node(parent, name, kind) {
    return { name: name, kind: kind, parent: parent, value: 0, bytes: 0, blocks: 0,
             kids: null, list: NONE, locs: NONE, depth: parent ? parent.depth + 1 : 0,
             scope: parent ? parent.scope : null, match: false, height: 0 };
  }

  function child(n, key, name, kind) {
    var c = n.kids ? n.kids.get(key) : undefined;
    if (!c) {
      c = node(n, name, kind);
      if (!n.kids)
        n.kids = new Map();
      n.kids.set(key, c);
    }
    return c;
  }

  var frameLocs = [];

  function frameLocation(i) {
    var loc = frameLocs[i];
    if (loc === undefined)
      loc = frameLocs[i] = location(frames[i]);
    return loc;
  }

  function add(n, value, bytes, blocks) {
    n.value += value;
    n.bytes += bytes;
    n.blocks += blocks;
  }

  /* Root, then scopes, then frames outermost first, siblings of the same name merged. A
   * site is [scope, blocks, bytes, stack]: a leak site, or an allocation site (blocks are
   * then allocations). */
  function buildTree(p, mode) {
    var root = node(null, p.total ? 'all processes' : 'all', 'root');
    if (mode === 'allocated' && !p.alloc_sites) {
      p.scopes.forEach(function (s, i) {
        if (!s.bytes_allocated)
          return;
        var n = child(root, i, s.name, 'scope');
        n.scope = i;
        add(n, s.bytes_allocated, s.bytes_allocated, s.allocations);
        add(root, s.bytes_allocated, s.bytes_allocated, s.allocations);
      });
    } else {
      (mode === 'allocated' ? p.allocs : p.leaks).forEach(function (l) {
        var value = mode === 'blocks' ? l[1] : l[2];
        if (!value)
          return;
        add(root, value, l[2], l[1]);
        var n = child(root, l[0], p.scopes[l[0]].name, 'scope');
        n.scope = l[0];
        add(n, value, l[2], l[1]);
        var st = l[3];
        if (!st) {
          add(child(n, '\u0000none', '[no stack]', 'nostack'), value, l[2], l[1]);
          return;
        }
        for (var k = st.length - 1; k >= 0; k--) {
          var f = frames[st[k]];
          n = child(n, f[0], f[0], 'frame');
          add(n, value, l[2], l[1]);
          if (n.locs.length < 8) {
            var loc = frameLocation(st[k]);
            if (loc && n.locs.indexOf(loc) < 0) {
              if (n.locs === NONE)
                n.locs = [];
              n.locs.push(loc);
            }
          }
          if (!n.module && f[4])
            n.module = f[4];
        }
      });
    }
    finish(root);
    return root;
  }

  /* Children largest first (ties by name), so that the biggest sits on the left. */
  function finish(n) {
    if (!n.kids)
      return;
    n.list = Array.from(n.kids.values());
    n.kids = null;
    if (n.list.length > 1)
      n.list.sort(function (a, b) {
        return b.value - a.value || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      });
    for (var i = 0; i < n.list.length; i++) {
      var c = n.list[i];
      finish(c);
      if (c.height + 1 > n.height)
        n.height = c.height + 1;
    }
  }

  function hashHue(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++)
      h = (h * 31 + s.charCodeAt(i)) | 0;
    return Math.abs(h);
  }

  function nodeColour(n) {
    if (n.kind === 'root')
      return '#5f6776';
    if (n.kind === 'scope')
      return scopeColour(n.scope);
    if (n.kind === 'nostack')
      return '#c3c8d0';
    var h = hashHue(n.name);
    return 'hsl(' + (h % 50 + 5) + ',' + (h % 25 + 70) + '%,' + (h % 13 + 58) + '%)';
  }

  function valueText(n) {
    if (state.mode === 'allocated')
      return human(n.bytes) + ' allocated in ' + count(n.blocks) + ' ' +
             plural(n.blocks, 'allocation', 'allocations');
    var p = views[state.view].p;
    return human(n.bytes) + ' ' + (p.final ? 'leaked' : 'still live') + ' in ' +
           count(n.blocks) + ' ' + plural(n.blocks, 'block', 'blocks');
  }

  function describe(n) {
    var parts = { name: n.name, loc: '', value: valueText(n) };
    if (n.kind === 'scope')
      parts.name = 'scope ' + n.name + ' (' + views[state.view].p.scopes[n.scope].kind + ')';
    if (n.locs.length)
      parts.loc = n.locs.slice(0, 3).join(', ') + (n.locs.length > 3 ? ', \u2026' : '');
    else if (n.module)
      parts.loc = n.module;
    var root = state.tree;
    parts.share = percent(n.value, root.value) + ' of all';
    if (state.zoom && state.zoom !== root)
      parts.share += ', ' + percent(n.value, state.zoom.value) + ' of the zoomed frame';
    return parts;
  }

  function showDetail(n, ev) {
    var d = describe(n);
    $('flame-detail').textContent = d.name + (d.loc ? '  \u2014  ' + d.loc : '') + '  \u2014  ' +
                                     d.value + ' (' + d.share + ')';
    var tip = $('tip');
    clear(tip);
    tip.appendChild(el('div', { 'class': 'fn' }, d.name));
    if (d.loc)
      tip.appendChild(el('div', { 'class': 'loc' }, d.loc));
    tip.appendChild(el('div', null, d.value));
    tip.appendChild(el('div', { 'class': 'muted' }, d.share));
    tip.hidden = false;
    if (ev) {
      var x = ev.clientX + 14, y = ev.clientY + 14;
      var w = tip.offsetWidth, h = tip.offsetHeight;
      if (x + w > window.innerWidth - 4)
        x = Math.max(4, ev.clientX - w - 10);
      if (y + h > window.innerHeight - 4)
        y = Math.max(4, ev.clientY - h - 10);
      tip.style.left = x + 'px';
      tip.style.top = y + 'px';
    }
  }

  function matches(n, q) {
    if (n.kind === 'root')
      return false;
    if (q.test(n.name))
      return true;
    for (var i = 0; i < n.locs.length; i++)
      if (q.test(n.locs[i]))
        return true;
    return false;
  }

  /* Marks matching frames; returns how many, and the value under them (nested matches
   * counted once). A tree never searched has nothing to clear. */
  function markMatches(root, q) {
    var found = 0, value = 0;
    if (!q && !root.searched)
      return { found: 0, value: 0 };
    root.searched = !!q;
    (function walk(n, inside) {
      n.match = q ? matches(n, q) : false;
      if (n.match)
        found++;
      if (n.match && !inside)
        value += n.value;
      for (var i = 0; i < n.list.length; i++)
        walk(n.list[i], inside || n.match);
    })(root, false);
    return { found: found, value: value };
  }

  function parseQuery(text) {
    text = text.trim();
    if (!text)
      return null;
    var m = /^\/(.+)\/([a-z]*)$/.exec(text);
    if (m) {
      try {
        return new RegExp(m[1], m[2].replace(/g/g, ''));
      } catch (e) {
        return null;
      }
    }
    var esc = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(esc, 'i');
  }

  function drawFlame() {
    var p = views[state.view].p;
    var root = state.tree;
    var zoom = state.zoom || root;
    var box = $('flame');
    clear(box);
    var width = Math.max(300, $('flame-wrap').clientWidth || 1000);
    var note = $('flame-note');
    note.hidden = true;
    if (state.mode === 'allocated' && !p.alloc_sites) {
      note.hidden = false;
      note.textContent = 'No bytes allocated per stack (' + p.alloc_note + '): each scope ' +
                         'is one frame.';
    } else if (state.mode === 'allocated') {
      if (!root.value) {
        note.hidden = false;
        note.textContent = 'No allocations to show.';
      }
    } else if (!p.leaks.length) {
      note.hidden = false;
      note.textContent = p.total && !root.value ? 'No leaks in the processes that exited.'
                                                : 'No leak sites to show.';
    }
    var chain = [];
    for (var a = zoom; a; a = a.parent)
      chain.unshift(a);
    var rows = chain.length + zoom.height;
    box.setAttribute('width', width);
    box.setAttribute('height', rows * ROW + 2);
    box.setAttribute('viewBox', '0 0 ' + width + ' ' + (rows * ROW + 2));
    var drawn = 0;

    function draw(n, x, w, depth, faded) {
      var cls = 'node ' + n.kind + (faded ? ' faded' : '');
      var g = svg('g', { 'class': cls, 'data-name': n.name, 'data-value': String(n.value),
                         'data-depth': String(depth) });
      g._node = n;
      var r = svg('rect', { x: x.toFixed(2), y: depth * ROW + 1, width: w.toFixed(2),
                            height: ROW - 1, fill: nodeColour(n), rx: 1.5 });
      if (n.match)
        r.setAttribute('class', 'match');
      g.appendChild(r);
      var chars = Math.floor((w - 6) / 6.7);
      if (chars >= 3) {
        var label = n.kind === 'root' ? n.name + ' \u2014 ' + human(n.bytes) : n.name;
        if (label.length > chars)
          label = label.slice(0, chars - 1) + '\u2026';
        var t = svg('text', { x: (x + 3).toFixed(2), y: depth * ROW + 13 });
        t.textContent = label;
        g.appendChild(t);
      }
      box.appendChild(g);
      drawn++;
    }

    for (var d = 0; d < chain.length - 1; d++)
      draw(chain[d], 0, width, d, true);
    var scale = zoom.value ? width / zoom.value : 0;
    (function walk(n, x, depth) {
      var w = n.value * scale;
      if (w < MIN_WIDTH)
        return;
      draw(n, x, w, depth, false);
      var cx = x;
      /* Children come largest first: after the first too narrow to draw, all are. */
      for (var i = 0; i < n.list.length && n.list[i].value * scale >= MIN_WIDTH; i++) {
        walk(n.list[i], cx, depth + 1);
        cx += n.list[i].value * scale;
      }
    })(zoom, 0, chain.length - 1);
    box.setAttribute('data-drawn', String(drawn));
    $('reset-zoom').disabled = zoom === root;
  }

  function zoomTo(n) {
    state.zoom = n === state.tree ? null : n;
    drawFlame();
  }

  function applySearch() {
    state.query = parseQuery($('search').value);
    var r = markMatches(state.tree, state.query);
    var info = $('match-info');
    info.textContent = state.query ? r.found + ' ' + plural(r.found, 'frame', 'frames') +
                       ' match, ' + percent(r.value, state.tree.value) + ' of the total' : '';
    drawFlame();
  }

  function rebuildFlame() {
    state.tree = buildTree(views[state.view].p, state.mode);
    state.zoom = null;
    applySearch();
  }

  function flameTarget(ev) {
    var t = ev.target;
    while (t && t !== ev.currentTarget) {
      if (t._node)
        return t._node;
      t = t.parentNode;
    }
    return null;
  }

  $('flame').addEventListener('mousemove', function (ev) {
    var n = flameTarget(ev);
    if (n)
      showDetail(n, ev);
    else
      $('tip').hidden = true;
  });
  $('flame').addEventListener('mouseleave', function () { $('tip').hidden = true; });
  $('flame').addEventListener('click', function (ev) {
    var n = flameTarget(ev);
    if (n)
      zoomTo(n);
  });
  $('reset-zoom').addEventListener('click', function () { zoomTo(state.tree); });
  $('flame-value').addEventListener('change', function () {
    state.mode = $('flame-value').value;
    rebuildFlame();
  });
  $('search').addEventListener('input', applySearch);

  /* ---- live bytes over time ----------------------------------------------------------- */

  /* Steps of 1, 2 or 5 times a power of ten, about n of them over max. */
  function niceStep(max, n) {
    var raw = max / n;
    var pow = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var f = raw / pow;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
  }

  /* Byte ticks fall on round numbers of the unit the largest value is shown in. */
  function byteStep(max) {
    var unit = 1;
    while (max / unit >= 1024 && unit < Math.pow(1024, 5))
      unit *= 1024;
    return niceStep(max / unit, 4) * unit;
  }

  function timeText(ms, span) {
    if (span < 2000)
      return (Math.round(ms * 10) / 10) + ' ms';
    return (span < 20000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(0)) + ' s';
  }

  function drawTimeline(p) {
    var box = $('timeline'), note = $('timeline-note'), legend = $('legend');
    clear(box);
    clear(legend);
    note.hidden = true;
    $('timeline-detail').hidden = false;
    $('timeline-wrap').hidden = false;
    var tl = p.timeline;
    if (!tl || !tl.t.length) {
      $('timeline-wrap').hidden = true;
      $('timeline-detail').hidden = true;
      note.hidden = false;
      note.textContent = p.total ? 'Live bytes over time are shown per process: choose one ' +
                                   'at the top.'
                                 : 'This report has no samples of live bytes over time (it ' +
                                   'was written by a tracker older than report format 2).';
      return;
    }
    var width = Math.max(300, $('timeline-wrap').clientWidth || 1000), height = 260;
    var L = 72, R = 14, T = 10, B = 26;
    var pw = width - L - R, ph = height - T - B;
    box.setAttribute('width', width);
    box.setAttribute('height', height);
    box.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    var n = tl.t.length;
    /* Largest peak at the bottom, the others scopes on top. */
    var series = tl.series.map(function (s) {
      return { scope: s.scope, v: s.v, peak: Math.max.apply(null, s.v) };
    });
    series.sort(function (a, b) {
      if ((a.scope === null) !== (b.scope === null))
        return a.scope === null ? 1 : -1;
      return b.peak - a.peak;
    });
    var tmax = tl.t[n - 1] || 1;
    var top = 0, sums = [];
    for (var k = 0; k < n; k++) {
      var s = 0;
      series.forEach(function (se) { s += se.v[k]; });
      sums.push(s);
      if (s > top)
        top = s;
    }
    if (!top)
      top = 1;
    var ystep = byteStep(top), ymax = Math.ceil(top / ystep) * ystep;
    function X(t) { return L + (n === 1 ? pw : t / tmax * pw); }
    function Y(v) { return T + ph - v / ymax * ph; }
    for (var y = 0; y <= ymax + ystep / 2; y += ystep) {
      box.appendChild(svg('line', { 'class': 'grid', x1: L, x2: L + pw, y1: Y(y), y2: Y(y) }));
      var lab = svg('text', { x: L - 6, y: Y(y) + 4, 'text-anchor': 'end' });
      lab.textContent = human(y);
      box.appendChild(lab);
    }
    var xstep = niceStep(tmax, Math.max(2, Math.floor(pw / 110)));
    for (var x = 0; x <= tmax + xstep / 1000; x += xstep) {
      var xl = svg('text', { x: X(x), y: T + ph + 17, 'text-anchor': 'middle' });
      xl.textContent = timeText(x, tmax);
      box.appendChild(xl);
      box.appendChild(svg('line', { 'class': 'axis', x1: X(x), x2: X(x), y1: T + ph,
                                    y2: T + ph + 4 }));
    }
    var base = new Array(n).fill(0);
    series.forEach(function (se) {
      var upper = [], lower = [];
      for (var k = 0; k < n; k++) {
        var x0 = n === 1 ? L : X(tl.t[k]);
        upper.push((k ? 'L' : 'M') + x0.toFixed(1) + ',' + Y(base[k] + se.v[k]).toFixed(1));
        if (n === 1)
          upper.push('L' + (L + pw).toFixed(1) + ',' + Y(base[k] + se.v[k]).toFixed(1));
      }
      for (var j = n - 1; j >= 0; j--) {
        if (n === 1)
          lower.push('L' + (L + pw).toFixed(1) + ',' + Y(base[j]).toFixed(1));
        lower.push('L' + (n === 1 ? L : X(tl.t[j])).toFixed(1) + ',' + Y(base[j]).toFixed(1));
        base[j] += se.v[j];
      }
      var name = se.scope === null ? 'other scopes' : p.scopes[se.scope].name;
      var path = svg('path', { 'class': 'area', d: upper.join('') + lower.join('') + 'Z',
                               fill: scopeColour(se.scope), 'data-scope': name });
      box.appendChild(path);
      var item = el('span');
      var sw = el('span', { 'class': 'swatch' });
      sw.style.background = scopeColour(se.scope);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name + ' (peak ' + human(se.peak) + ')'));
      legend.appendChild(item);
    });
    box.appendChild(svg('line', { 'class': 'axis', x1: L, x2: L + pw, y1: T + ph, y2: T + ph }));
    box.appendChild(svg('line', { 'class': 'axis', x1: L, x2: L, y1: T, y2: T + ph }));
    var cursor = svg('line', { 'class': 'cursor', x1: 0, x2: 0, y1: T, y2: T + ph,
                               visibility: 'hidden' });
    box.appendChild(cursor);
    box.onmousemove = function (ev) {
      var rect = box.getBoundingClientRect();
      var px = (ev.clientX - rect.left) * width / rect.width;
      var t = (px - L) / pw * tmax, best = 0;
      for (var k = 1; k < n; k++)
        if (Math.abs(tl.t[k] - t) < Math.abs(tl.t[best] - t))
          best = k;
      var cx = X(tl.t[best]);
      cursor.setAttribute('x1', cx);
      cursor.setAttribute('x2', cx);
      cursor.setAttribute('visibility', 'visible');
      var parts = series.filter(function (se) { return se.v[best]; }).map(function (se) {
        return (se.scope === null ? 'other scopes' : p.scopes[se.scope].name) + ' ' +
               human(se.v[best]);
      });
      $('timeline-detail').textContent = 'at ' + timeText(tl.t[best], tmax) + ': ' +
        human(sums[best]) + ' live' + (parts.length ? ' \u2014 ' + parts.join(', ') : '');
    };
    box.onmouseleave = function () { cursor.setAttribute('visibility', 'hidden'); };
    box.setAttribute('data-samples', String(n));
  }

  /* ---- leak sites and bad frees ------------------------------------------------------- */

  function frameList(st) {
    var ol = el('ol', { 'class': 'frames', start: '0' });
    if (!st) {
      ol.appendChild(el('li', { 'class': 'muted' }, '(no stack recorded)'));
      return ol;
    }
    st.forEach(function (i) {
      var f = frames[i];
      var li = el('li', null, f[0]);
      var loc = f[1] || f[2] ? location(f) : '';
      if (loc && loc !== f[0])
        li.appendChild(el('span', { 'class': 'loc' }, loc));
      ol.appendChild(li);
    });
    return ol;
  }

  function drawSites(p) {
    var box = $('sites');
    clear(box);
    var leaks = p.leaks.slice().sort(function (a, b) { return b[2] - a[2]; });
    var shown = leaks.slice(0, 25);
    if (!shown.length) {
      box.appendChild(el('p', { 'class': 'note' }, p.final ? 'No leaks.' : 'No blocks live.'));
      return;
    }
    if (leaks.length > shown.length)
      box.appendChild(el('p', { 'class': 'hint' }, 'The largest ' + shown.length + ' of ' +
                         count(leaks.length) + ' sites; the flame graph shows them all.'));
    shown.forEach(function (l) {
      var d = el('div', { 'class': 'site' });
      var h = el('div', { 'class': 'head' });
      h.appendChild(el('span', { 'class': 'bad' }, count(l[1]) + ' ' +
                       plural(l[1], 'block', 'blocks') + ', ' + human(l[2])));
      h.appendChild(document.createTextNode((p.final ? ' leaked' : ' still live') +
                                            ' in scope ' + p.scopes[l[0]].name));
      d.appendChild(h);
      d.appendChild(frameList(l[3]));
      box.appendChild(d);
    });
  }

  function drawBadFrees(p) {
    var box = $('badfrees');
    clear(box);
    if (!p.badfrees.length) {
      box.appendChild(el('p', { 'class': 'note' }, 'No bad frees.'));
      return;
    }
    var what = { invalid: 'never allocated', double: 'already freed',
                 stale: 'bulk-freed with scope ' };
    p.badfrees.forEach(function (b) {
      var d = el('div', { 'class': 'site' });
      var h = el('div', { 'class': 'head' });
      h.appendChild(el('span', { 'class': 'bad' }, count(b[1]) + ' ' + b[0] + ' ' +
                       plural(b[1], 'free', 'frees')));
      h.appendChild(document.createTextNode(' (' + what[b[0]] +
                                            (b[0] === 'stale' ? (b[2] || '?') : '') + ')' +
                                            (b[3] !== '0x0' ? ', e.g. ' + b[3] : '')));
      d.appendChild(h);
      d.appendChild(frameList(b[4]));
      box.appendChild(d);
    });
  }

  /* ---- the whole page ----------------------------------------------------------------- */

  function drawAll() {
    var p = views[state.view].p;
    drawHeader(p);
    drawScopes(p);
    rebuildFlame();
    drawTimeline(p);
    drawSites(p);
    drawBadFrees(p);
  }

  var pick = $('proc');
  views.forEach(function (v, i) {
    pick.appendChild(el('option', { value: String(i) }, v.label));
  });
  $('proc-pick').hidden = views.length < 2;
  pick.addEventListener('change', function () {
    state.view = Number(pick.value);
    drawAll();
  });
  $('foot').textContent = 'Written by ' + data.generator + '. This page is self-contained: ' +
                          'it loads nothing from anywhere.';

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      drawFlame();
      drawTimeline(views[state.view].p);
    }, 150);
  });

  if (views.length) {
    drawAll();
  } else {
    $('title').textContent = 'no processes';
  }
  window.cmtReadyMs = performance.now();
  document.documentElement.setAttribute('data-ready', '1');
})();
