#!/usr/bin/python3
"""html-browser.py — cymem-report's HTML page in a real browser: headless Chromium, driven
through the DevTools protocol over --remote-debugging-pipe (no port, no server: the page is
loaded from its file). Python's standard library only.

  html-browser.py check PAGE EXPECT.json SCREENSHOT.png
      Loads PAGE and checks what EXPECT.json describes (see check_html.c): the flame graph's
      frames and their widths, proportional to their values; a click that zooms; the search
      highlighting; the hover; the scope table's sorting; the timeline; that no report
      string became markup; that the page asked for nothing but itself. Saves a screenshot.
  html-browser.py shot PAGE SCREENSHOT.png [WIDTH [HEIGHT [FRAME]]]
      Only a screenshot: of the whole page, or of its top HEIGHT pixels, with the mouse
      over the widest flame graph frame named FRAME (how doc/report.png was made).
  html-browser.py bench CYMEM-REPORT [SITES] [RUNS]
      Writes a report with SITES leak sites (10000) and a full timeline, renders it with
      CYMEM-REPORT --html, loads it RUNS times (5) and prints the time to a drawn page.

Exit status: 0 passed, 1 failed, 77 Chromium is missing (skipped), 2 usage.
CMT_CHROMIUM names the browser (default /usr/bin/chromium).
"""
import base64
import json
import os
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77


class Failure(Exception):
    pass


def chromium_path():
    path = os.environ.get('CMT_CHROMIUM') or '/usr/bin/chromium'
    return path if os.access(path, os.X_OK) else None


class Browser:
    """One headless Chromium and one page, spoken to over a pair of pipes: commands are JSON
    objects ending in NUL on the browser's fd 3, answers and events come back on its fd 4."""

    def __init__(self, chromium, width=1280, height=900):
        self.profile = tempfile.mkdtemp(prefix='cmt-chromium.')
        cmd_r, self.cmd_w = os.pipe()
        self.ev_r, ev_w = os.pipe()

        def child():
            a, b = os.dup(cmd_r), os.dup(ev_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        # The flags a machine without a network needs: no background requests at all, so
        # that nothing but the page itself is asked for; root needs --no-sandbox.
        args = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                '--no-first-run', '--no-default-browser-check',
                '--disable-background-networking', '--disable-component-update',
                '--disable-sync', '--disable-extensions', '--disable-default-apps',
                '--mute-audio', '--hide-scrollbars', '--allow-file-access-from-files',
                '--user-data-dir=' + self.profile, '--remote-debugging-pipe',
                '--window-size=%d,%d' % (width, height), 'about:blank']
        self.log = open(os.path.join(self.profile, 'chromium.log'), 'wb')
        self.proc = subprocess.Popen(args, preexec_fn=child, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        os.close(cmd_r)
        os.close(ev_w)
        self.next_id = 0
        self.buf = b''
        self.events = []
        self.session = None
        target = self.call('Target.createTarget', {'url': 'about:blank'})['targetId']
        self.session = self.call('Target.attachToTarget',
                                 {'targetId': target, 'flatten': True})['sessionId']
        self.call('Page.enable')
        self.call('Network.enable')
        self.call('Runtime.enable')
        self.call('Emulation.setDeviceMetricsOverride',
                  {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': False})

    def _read(self, deadline):
        while b'\0' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure('Chromium did not answer in time')
            ready, _, _ = select.select([self.ev_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.ev_r, 1 << 20)
            if not chunk:
                raise Failure('Chromium closed the pipe (see %s)' % self.log.name)
            self.buf += chunk
        msg, self.buf = self.buf.split(b'\0', 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        msg = {'id': self.next_id, 'method': method, 'params': params or {}}
        if self.session and not method.startswith(('Target.', 'Browser.')):
            msg['sessionId'] = self.session
        data = json.dumps(msg).encode() + b'\0'
        while data:
            data = data[os.write(self.cmd_w, data):]
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get('id') == self.next_id:
                if 'error' in m:
                    raise Failure('%s: %s' % (method, m['error'].get('message')))
                return m.get('result', {})
            if 'method' in m:
                self.events.append(m)

    def wait_event(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e['method'] == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def js(self, expr):
        r = self.call('Runtime.evaluate', {'expression': expr, 'returnByValue': True,
                                           'awaitPromise': True})
        if 'exceptionDetails' in r:
            raise Failure('script failed: %s: %s' % (expr[:80],
                          r['exceptionDetails'].get('exception', {}).get('description')))
        return r['result'].get('value')

    def load(self, path, timeout=60):
        """Loads the page and waits until report.js says it is drawn; returns the seconds
        from the navigation to that moment, as seen from here."""
        url = 'file://' + os.path.abspath(path)
        t0 = time.monotonic()
        self.call('Page.navigate', {'url': url})
        self.wait_event('Page.loadEventFired', timeout)
        while self.js("document.documentElement.getAttribute('data-ready')") != '1':
            if time.monotonic() - t0 > timeout:
                raise Failure('the page never finished drawing')
            time.sleep(0.01)
        return time.monotonic() - t0

    def mouse(self, kind, x, y, buttons=0, clicks=0):
        p = {'type': kind, 'x': x, 'y': y}
        if kind in ('mousePressed', 'mouseReleased'):
            p.update(button='left', clickCount=clicks or 1)
        self.call('Input.dispatchMouseEvent', p)

    def click(self, x, y):
        self.mouse('mouseMoved', x, y)
        self.mouse('mousePressed', x, y)
        self.mouse('mouseReleased', x, y)

    def screenshot(self, path, height=None):
        size = self.js('[document.documentElement.scrollWidth, '
                       'document.documentElement.scrollHeight]')
        if height:
            size[1] = min(size[1], height)
        shot = self.call('Page.captureScreenshot',
                         {'format': 'png', 'captureBeyondViewport': True,
                          'clip': {'x': 0, 'y': 0, 'width': size[0], 'height': size[1],
                                   'scale': 1}})
        with open(path, 'wb') as f:
            f.write(base64.b64decode(shot['data']))

    def requests(self):
        """URLs the page asked for: every Network.requestWillBeSent so far."""
        return [e['params']['request']['url'] for e in self.events
                if e['method'] == 'Network.requestWillBeSent']

    def close(self):
        try:
            self.call('Browser.close', timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.cmd_w)
        os.close(self.ev_r)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# ---- check ------------------------------------------------------------------------------

NODES = """Array.from(document.querySelectorAll('#flame g.node')).map(function (g) {
  var r = g.querySelector('rect'), b = r.getBoundingClientRect();
  return {name: g.getAttribute('data-name'), value: Number(g.getAttribute('data-value')),
          depth: Number(g.getAttribute('data-depth')), cls: g.getAttribute('class'),
          x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')),
          match: r.getAttribute('class') === 'match',
          cx: b.left + b.width / 2, cy: b.top + b.height / 2};
})"""


def check_flame(b, want, width, what):
    """The flame graph as drawn now: the root and the frames want names, every frame as wide
    as its share of want's total. Returns the frames."""
    nodes = b.js(NODES)
    root = [n for n in nodes if n['depth'] == 0]
    if len(root) != 1 or root[0]['value'] != want['total']:
        raise Failure('%s: root frame: %r, expected one of %d' % (what, root, want['total']))
    for name, depth, value in want['frames']:
        found = [n for n in nodes if n['name'] == name and n['depth'] == depth]
        if not any(n['value'] == value for n in found):
            raise Failure('%s: no frame %r at depth %d with %d: %r' % (what, name, depth, value,
                                                                      found))
    for n in nodes:
        expect_w = n['value'] / want['total'] * width
        if abs(n['w'] - expect_w) > 0.02:
            raise Failure('%s: frame %r is %.2f px wide, expected %.2f (%d of %d over %d px)'
                          % (what, n['name'], n['w'], expect_w, n['value'], want['total'],
                             width))
    return nodes


def check_hover(b, nodes, want, what):
    """Hovering the widest frame named want['hover'] shows each of want['hover_text'] in the
    detail line and the tooltip. Returns the detail line."""
    target = max((n for n in nodes if n['name'] == want['hover']), key=lambda n: n['value'])
    b.mouse('mouseMoved', target['cx'], target['cy'])
    detail = b.js("document.getElementById('flame-detail').textContent")
    tip = b.js("document.getElementById('tip').hidden ? '' : "
               "document.getElementById('tip').textContent")
    for part in want['hover_text']:
        if part not in detail or part not in tip:
            raise Failure('%s: hovering %r shows %r / %r, without %r' % (what, want['hover'],
                                                                         detail, tip, part))
    return detail


def check(page, expect_path, shot):
    want = json.load(open(expect_path))
    chromium = chromium_path()
    if not chromium:
        print('%s is not installed' % (os.environ.get('CMT_CHROMIUM') or '/usr/bin/chromium'))
        return SKIP
    b = Browser(chromium)
    ok = []
    try:
        b.load(page)
        # The flame graph: the frames expected, each as wide as its share of the total.
        width = b.js("Number(document.getElementById('flame').getAttribute('width'))")
        nodes = check_flame(b, want, width, 'bytes leaked')
        ok.append('%d frames, widths proportional to bytes' % len(nodes))

        # Hover: the detail line names the function, its file:line, bytes and blocks.
        ok.append('hover shows ' + check_hover(b, nodes, want, 'bytes leaked'))

        # A click zooms: the frame takes the whole width, its ancestors fade.
        target = [n for n in nodes if n['name'] == want['zoom']][0]
        b.click(target['cx'], target['cy'])
        nodes = b.js(NODES)
        z = [n for n in nodes if n['name'] == want['zoom'] and n['depth'] == want['zoom_depth']]
        if len(z) != 1 or abs(z[0]['w'] - width) > 0.02 or z[0]['x'] != 0:
            raise Failure('after a click on %r: %r' % (want['zoom'], z))
        faded = [n for n in nodes if 'faded' in n['cls']]
        if len(faded) != want['zoom_depth'] or any(abs(n['w'] - width) > 0.02 for n in faded):
            raise Failure('after the zoom, ancestors: %r' % faded)
        for n in nodes:
            if n['depth'] > want['zoom_depth'] and n['w'] > z[0]['value'] and \
                    abs(n['w'] - n['value'] / z[0]['value'] * width) > 0.02:
                raise Failure('zoomed frame %r has the wrong width' % n['name'])
        if b.js("document.getElementById('reset-zoom').disabled"):
            raise Failure('reset zoom stays disabled after a zoom')
        b.js("document.getElementById('reset-zoom').click()")
        root = [n for n in b.js(NODES) if n['depth'] == 0]
        if b.js("document.querySelectorAll('#flame g.faded').length") != 0 or \
                len(root) != 1 or 'faded' in root[0]['cls']:
            raise Failure('reset zoom did not undo the zoom')
        ok.append('a click on %s zooms it to the full width' % want['zoom'])

        # The search box highlights the frames that match, and only those.
        b.js("document.getElementById('search').focus()")
        b.call('Input.insertText', {'text': want['search']})
        nodes = b.js(NODES)
        matched = sorted({n['name'] for n in nodes if n['match']})
        if matched != sorted(want['search_names']):
            raise Failure('searching %r highlights %r, expected %r' % (want['search'], matched,
                                                                       want['search_names']))
        info = b.js("document.getElementById('match-info').textContent")
        if 'match' not in info:
            raise Failure('no match count shown: %r' % info)
        ok.append('search %r highlights %s (%s)' % (want['search'], ', '.join(matched), info))
        b.js("var s = document.getElementById('search'); s.value = ''; "
             "s.dispatchEvent(new Event('input'))")

        # Switched to bytes allocated: the allocation sites' stacks, as wide as their bytes.
        if 'allocated' in want:
            a = want['allocated']
            switch = ("var v = document.getElementById('flame-value'); v.value = '%s'; "
                      "v.dispatchEvent(new Event('change'))")
            b.js(switch % 'allocated')
            nodes = check_flame(b, a, width, 'bytes allocated')
            if not b.js("document.getElementById('flame-note').hidden"):
                raise Failure('bytes allocated: a note shows: %r' %
                              b.js("document.getElementById('flame-note').textContent"))
            detail = check_hover(b, nodes, a, 'bytes allocated')
            b.mouse('mouseMoved', 0, 0)
            b.js(switch % 'bytes')
            ok.append('bytes allocated: %d frames, widths proportional to bytes; hover shows %s'
                      % (len(nodes), detail))

        # The scope table sorts by the column clicked.
        pos = b.js("(function(){var th=document.querySelector('#scopes th[data-key=\"%s\"]');"
                   "var r=th.getBoundingClientRect(); th.scrollIntoView();"
                   "r=th.getBoundingClientRect(); return [r.left+r.width/2, r.top+r.height/2];"
                   "})()" % want['sort'])
        b.click(pos[0], pos[1])
        names = b.js("Array.from(document.querySelectorAll('#scopes tbody tr')).map("
                     "function(tr){return tr.cells[0].textContent;})")
        if names != want['sorted_names']:
            raise Failure('sorted by %s: %r, expected %r' % (want['sort'], names,
                                                             want['sorted_names']))
        b.click(pos[0], pos[1])
        names2 = b.js("Array.from(document.querySelectorAll('#scopes tbody tr')).map("
                      "function(tr){return tr.cells[0].textContent;})")
        if names2 != list(reversed(want['sorted_names'])):
            raise Failure('a second click does not reverse the order: %r' % names2)
        ok.append('the scope table sorts by %s, both ways' % want['sort'])

        # The timeline: one area per series.
        areas = b.js("document.querySelectorAll('#timeline path.area').length")
        if areas != want['timeline_series']:
            raise Failure('timeline: %d areas, expected %d' % (areas, want['timeline_series']))
        ok.append('timeline: %d stacked areas' % areas)

        # Report strings stay text: the hostile argument is shown, no script was added.
        if b.js('document.scripts.length') != 2:
            raise Failure('the page has %d scripts' % b.js('document.scripts.length'))
        if want['title_has'] not in b.js("document.getElementById('facts').textContent"):
            raise Failure('the command line is not shown as text')
        ok.append('report strings shown as text, no script injected')

        b.js('window.scrollTo(0, 0)')
        b.screenshot(shot)
        ok.append('screenshot saved to ' + shot)

        # Nothing but the page itself was asked for.
        urls = b.requests()
        page_url = 'file://' + os.path.abspath(page)
        foreign = [u for u in urls if u != page_url and not u.startswith(('data:', 'about:'))]
        if foreign:
            raise Failure('the page asked for other resources: %r' % foreign)
        ok.append('requests: %d, all of the page itself' % len(urls))
        # And the page's script never failed, nor complained (a blocked request would).
        errors = [e['params'] for e in b.events if e['method'] == 'Runtime.exceptionThrown' or
                  (e['method'] == 'Runtime.consoleAPICalled' and
                   e['params'].get('type') in ('error', 'warning'))]
        if errors:
            raise Failure('script errors: %r' % errors)
    except Failure as e:
        for line in ok:
            print('ok:', line)
        print('FAILED:', e)
        return 1
    finally:
        b.close()
    for line in ok:
        print('ok:', line)
    return 0


def shot(page, path, width=1280, height=None, frame=None):
    chromium = chromium_path()
    if not chromium:
        print('chromium is not installed')
        return SKIP
    b = Browser(chromium, width=width, height=height or 900)
    try:
        b.load(page)
        if frame:
            nodes = [n for n in b.js(NODES) if n['name'] == frame]
            if not nodes:
                raise Failure('no frame %r in the flame graph' % frame)
            n = max(nodes, key=lambda n: n['value'])
            b.mouse('mouseMoved', n['cx'], n['cy'])
        b.screenshot(path, height)
    finally:
        b.close()
    return 0


# ---- bench ------------------------------------------------------------------------------

def big_report(path, sites):
    """A report of one process with `sites` leak sites in 8 scopes, stacks 16 deep through
    a few hundred functions of a module that does not exist (frames stay module+offset),
    and 1024 timeline samples."""
    out = bytearray()

    def rec(kind, payload):
        out.extend(struct.pack('<II', kind, len(payload)))
        out.extend(payload)

    def s(text):
        b = text.encode()
        return struct.pack('<I', len(b)) + b

    out.extend(b'CYMEMTRK' + struct.pack('<II', 2, 16))
    start = 1700000000 * 10**9
    rec(1, struct.pack('<IIQQ', 4242, 1, start, start + 60 * 10**9) + s('/opt/big/server') +
        struct.pack('<I', 1) + s('server'))
    rec(2, struct.pack('<QQQ', 0x400000, 0x800000, 0) + s('/nonexistent/big/server') + s(''))
    for i in range(1, sites + 1):
        # A tree: frames near main are shared by many stacks, the leaves are nearly unique.
        pcs = [0x400000 + ((i * 2654435761 >> (d % 13)) % (64 + 40 * d)) * 64 + d * 0x10000
               for d in range(15, -1, -1)]
        rec(3, struct.pack('<II', i, 16) + b''.join(struct.pack('<Q', pc) for pc in pcs))
    for k in range(8):
        rec(4, struct.pack('<IB', k, 0 if k == 0 else 1) + s('global' if k == 0 else
                                                            'scope-%d' % k) +
            struct.pack('<9Q', 10, 10**6, 10**9, 10**6 - 1000, 10**9 - 10**6, 0, 0, 0, 10**8))
    for i in range(1, sites + 1):
        rec(5, struct.pack('<IIQQQQI', i % 8, i, 1 + i % 7, 64 * (1 + i % 97), 0, 0, 0))
    for t in range(1024):
        vals = [(k, (t * 1000 + k * 7919) % 10**7) for k in range(8)]
        rec(9, struct.pack('<QI', start + t * 58 * 10**6, len(vals)) +
            b''.join(struct.pack('<IQ', k, v) for k, v in vals))
    rec(7, struct.pack('<9Q', 10**7, 10**10, 10**7, sites * 4, sites * 3000, 10**9, 0, 0, 0))
    rec(8, struct.pack('<BI', 0, 0) + s(''))
    with open(path, 'wb') as f:
        f.write(out)


def bench(tool, sites=10000, runs=5):
    chromium = chromium_path()
    if not chromium:
        print('chromium is not installed')
        return SKIP
    d = tempfile.mkdtemp(prefix='cmt-html-bench.')
    try:
        report = os.path.join(d, 'big.cmt')
        page = os.path.join(d, 'big.html')
        big_report(report, sites)
        t0 = time.monotonic()
        subprocess.run([tool, '--html', page, report], check=True)
        render_s = time.monotonic() - t0
        b = Browser(chromium)
        try:
            walls, readies = [], []
            for _ in range(runs):
                walls.append(b.load(page))
                readies.append(b.js('window.cmtReadyMs'))
            drawn = b.js("document.getElementById('flame').getAttribute('data-drawn')")
        finally:
            b.close()
        print('report: %d leak sites, %d bytes; page: %d bytes, written in %.2f s' %
              (sites, os.path.getsize(report), os.path.getsize(page), render_s))
        print('page drawn (navigation start to data-ready, in the page): median %.0f ms, '
              'range %.0f-%.0f ms over %d loads; %s flame graph frames drawn' %
              (statistics.median(readies), min(readies), max(readies), runs, drawn))
        print('load to drawn as the test driver sees it: median %.0f ms, range %.0f-%.0f ms' %
              (statistics.median(walls) * 1000, min(walls) * 1000, max(walls) * 1000))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


def main(argv):
    try:
        if len(argv) == 5 and argv[1] == 'check':
            return check(argv[2], argv[3], argv[4])
        if 4 <= len(argv) <= 7 and argv[1] == 'shot':
            return shot(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else 1280,
                        int(argv[5]) if len(argv) > 5 else None,
                        argv[6] if len(argv) > 6 else None)
        if len(argv) in (3, 4, 5) and argv[1] == 'bench':
            return bench(argv[2], int(argv[3]) if len(argv) > 3 else 10000,
                         int(argv[4]) if len(argv) > 4 else 5)
    except Failure as e:
        print('FAILED:', e)
        return 1
    print(__doc__.split('\n\n')[1], file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
