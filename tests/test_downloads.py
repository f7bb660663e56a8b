"""utils.get_file: cache, mirrors, checksums, temporary files, offline mode.

Every download here comes from a local HTTP server on 127.0.0.1 (or a file:// URL); a guard
makes any connection to another address fail the test, and ZEROGRAD_OFFLINE=1 is set
unless a test asks for the server.
"""
import gzip
import hashlib
import http.server
import os
import socket
import sys
import threading
import types

import pytest

from zerograd import utils
from zerograd.utils import DownloadError, get_file

PAYLOAD = bytes(range(256)) * 40 + b'zerograd'  # 10,248 bytes
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
CONTENT = b'the decompressed content of a gzip file\n' * 100
CONTENT_MD5 = hashlib.md5(CONTENT).hexdigest()
GZ = gzip.compress(CONTENT)
GZ_MD5 = hashlib.md5(GZ).hexdigest()


# -----------------------------------------------------------------------------
# Fixtures: no traffic off this machine; offline by default; a local server
# -----------------------------------------------------------------------------
_LOOPBACK = ('127.0.0.1', 'localhost', '::1')


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch, tmp_path):
    """Refuse connections to anything but loopback (checked before any DNS lookup), drop
    proxy settings, set ZEROGRAD_OFFLINE=1 and a private default cache folder."""
    original = socket.create_connection

    def guarded(address, *args, **kwargs):
        if address[0] not in _LOOPBACK:
            raise AssertionError(f'test tried to connect to {address!r}')
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, 'create_connection', guarded)
    for name in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
                 'ALL_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')
    monkeypatch.setenv('ZEROGRAD_DATA', str(tmp_path / 'default-cache'))


class Server:
    """A bounded HTTP server on 127.0.0.1, port chosen by the OS.

    Routes: path -> (kind, body). kind 'ok' sends the body with its Content-Length;
    'short' announces 1,000 bytes more than it sends, then closes (interrupted download);
    'redirect' answers 302 to the URL in body. Any other path is 404.
    """

    def __init__(self):
        routes = self.routes = {}
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5  # a stuck connection ends

            def do_GET(self):
                hits.append(self.path)
                kind, body = routes.get(self.path, ('missing', b''))
                if kind == 'missing':
                    self.send_error(404)
                elif kind == 'redirect':
                    self.send_response(302)
                    self.send_header('Location', body)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                else:
                    self.send_response(200)
                    extra = 1000 if kind == 'short' else 0
                    self.send_header('Content-Length', str(len(body) + extra))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True  # HTTP/1.0: the socket closes now

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def add(self, path, body, kind='ok'):
        self.routes[path] = (kind, body)
        return self.url(path)

    def url(self, path):
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv('ZEROGRAD_OFFLINE')
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / 'cache'


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def no_network(*args, **kwargs):
    raise AssertionError('get_file opened a URL')


# -----------------------------------------------------------------------------
# Successful downloads
# -----------------------------------------------------------------------------
def test_download_verified_by_md5_of_the_bytes(server, cache):
    url = server.add('/files/payload.bin', PAYLOAD)
    path = get_file(url, md5=PAYLOAD_MD5, root=cache, quiet=True)
    assert path == os.path.join(str(cache), 'payload.bin')
    with open(path, 'rb') as file:
        assert file.read() == PAYLOAD
    assert listing(cache) == ['payload.bin']  # no temporary file left
    assert server.hits == ['/files/payload.bin']


def test_download_of_gzip_verified_by_md5_of_its_content(server, cache):
    url = server.add('/data.gz', GZ)
    path = get_file(url, md5=CONTENT_MD5, root=cache, quiet=True)
    with open(path, 'rb') as file:
        assert file.read() == GZ  # stored as published, not decompressed
    assert listing(cache) == ['data.gz']
    # the MD5 of the gzip bytes themselves is accepted too
    os.remove(path)
    assert get_file(url, md5=GZ_MD5.upper(), root=cache, quiet=True) == path


def test_download_without_md5_and_explicit_file_name(server, cache):
    url = server.add('/a/b/source.txt', b'hello')
    path = get_file(url, 'renamed.txt', root=cache, quiet=True)
    assert os.path.basename(path) == 'renamed.txt'
    assert listing(cache) == ['renamed.txt']
    with open(path, 'rb') as file:
        assert file.read() == b'hello'


def test_mirror_fallback_in_order(server, cache):
    missing = server.url('/mirror1/payload.bin')
    good = server.add('/mirror2/payload.bin', PAYLOAD)
    path = get_file([missing, good], md5=PAYLOAD_MD5, root=cache, quiet=True)
    assert server.hits == ['/mirror1/payload.bin', '/mirror2/payload.bin']
    with open(path, 'rb') as file:
        assert file.read() == PAYLOAD
    assert listing(cache) == ['payload.bin']


def test_mirrors_argument_is_appended(server, cache):
    good = server.add('/m/payload.bin', PAYLOAD)
    bad = server.add('/wrong/payload.bin', b'not the payload')
    path = get_file(server.url('/gone/payload.bin'), md5=PAYLOAD_MD5, root=cache,
                    mirrors=[bad, good], quiet=True)
    assert server.hits == ['/gone/payload.bin', '/wrong/payload.bin', '/m/payload.bin']
    assert os.path.getsize(path) == len(PAYLOAD)


def test_file_url(tmp_path, cache, monkeypatch):
    monkeypatch.delenv('ZEROGRAD_OFFLINE')
    monkeypatch.setattr(socket, 'create_connection', no_network)
    source = tmp_path / 'local.bin'
    source.write_bytes(PAYLOAD)
    path = get_file(source.as_uri(), md5=PAYLOAD_MD5, root=cache, quiet=True)
    assert os.path.basename(path) == 'local.bin' and listing(cache) == ['local.bin']


def test_message_unless_quiet(server, cache, capsys):
    url = server.add('/p.bin', PAYLOAD)
    get_file(url, root=cache, quiet=True)
    assert capsys.readouterr().err == ''
    get_file(url, 'q.bin', root=cache)
    err = capsys.readouterr().err
    assert 'Downloading q.bin' in err and url in err and '10,248 bytes' in err


class FakeTerminal:
    def __init__(self):
        self.text = ''

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return True


def test_progress_bar_with_tqdm_on_a_terminal(server, cache, monkeypatch):
    bars = []

    class FakeTqdm:  # records what get_file asks of tqdm
        def __init__(self, **kwargs):
            self.kwargs, self.updates, self.closed = kwargs, [], False
            bars.append(self)

        def update(self, n):
            self.updates.append(n)

        def close(self):
            self.closed = True

    module = types.ModuleType('tqdm')
    module.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, 'tqdm', module)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    url = server.add('/p.bin', PAYLOAD)
    get_file(url, root=cache, quiet=True)
    assert bars == [] and terminal.text == ''  # quiet: no bar, no message
    get_file(url, 'again.bin', root=cache)
    (bar,) = bars
    assert bar.kwargs['total'] == len(PAYLOAD) and bar.kwargs['desc'] == 'again.bin'
    assert sum(bar.updates) == len(PAYLOAD) and bar.closed
    assert 'Downloading again.bin' in terminal.text
    terminal.isatty = lambda: False  # not a terminal: no bar
    get_file(url, 'third.bin', root=cache)
    assert len(bars) == 1


def test_redirects_http_only(server, cache):
    target = server.add('/real.bin', PAYLOAD)
    via = server.add('/moved.bin', target, kind='redirect')
    assert os.path.getsize(get_file(via, root=cache, quiet=True)) == len(PAYLOAD)
    to_ftp = server.add('/ftp.bin', 'ftp://127.0.0.1/ftp.bin', kind='redirect')
    with pytest.raises(DownloadError, match='non-http'):
        get_file(to_ftp, root=cache, quiet=True)
    assert listing(cache) == ['moved.bin']


def test_loopback_bypasses_a_configured_proxy(server, cache, monkeypatch):
    # A proxy (here a closed loopback port) could not reach this machine's own server.
    monkeypatch.setenv('http_proxy', 'http://127.0.0.1:9')
    monkeypatch.delenv('no_proxy', raising=False)
    monkeypatch.delenv('NO_PROXY', raising=False)
    url = server.add('/p.bin', PAYLOAD)
    assert os.path.getsize(get_file(url, root=cache, quiet=True)) == len(PAYLOAD)
    assert server.hits == ['/p.bin']


# -----------------------------------------------------------------------------
# Failures: a clear error, and nothing left in the cache folder
# -----------------------------------------------------------------------------
def test_http_404(server, cache):
    url = server.url('/nothing-here.bin')
    with pytest.raises(DownloadError) as info:
        get_file(url, root=cache, quiet=True)
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert "'nothing-here.bin'" in message and str(cache) in message and url in message
    assert '404' in message
    assert listing(cache) == []


def test_interrupted_download(server, cache):
    url = server.add('/cut.bin', PAYLOAD, kind='short')
    with pytest.raises(DownloadError) as info:
        get_file(url, root=cache, quiet=True)
    message = str(info.value)
    assert 'interrupted' in message and '10,248 of 11,248 bytes' in message
    assert listing(cache) == []


def test_checksum_mismatch(server, cache):
    wrong = b'these are not the bytes that were published'
    url = server.add('/payload.bin', wrong)
    with pytest.raises(DownloadError) as info:
        get_file(url, md5=PAYLOAD_MD5, root=cache, quiet=True)
    message = str(info.value)
    assert f'expected {PAYLOAD_MD5}' in message
    assert f'got {hashlib.md5(wrong).hexdigest()}' in message
    assert listing(cache) == []


def test_truncated_gzip(server, cache):
    url = server.add('/data.gz', GZ[:len(GZ) // 2])
    with pytest.raises(DownloadError) as info:
        get_file(url, md5=CONTENT_MD5, root=cache, quiet=True)
    assert 'truncated or corrupt' in str(info.value)
    assert listing(cache) == []


def test_every_url_and_reason_reported(server, cache):
    urls = [server.url('/1/f.bin'), server.add('/2/f.bin', PAYLOAD, kind='short'),
            server.add('/3/f.bin', b'wrong')]
    with pytest.raises(DownloadError) as info:
        get_file(urls, md5=PAYLOAD_MD5, root=cache, quiet=True)
    error = info.value
    assert [u for u, _ in error.reasons] == urls and error.urls == urls
    assert '404' in error.reasons[0][1]
    assert 'interrupted' in error.reasons[1][1]
    assert 'MD5 mismatch' in error.reasons[2][1]
    assert error.file_name == 'f.bin' and error.folder == str(cache) and not error.offline
    message = str(error)
    assert all(u in message for u in urls)
    assert message.index(urls[0]) < message.index(urls[1]) < message.index(urls[2])
    assert os.path.join(str(cache), 'f.bin') in message  # where to place it by hand
    assert listing(cache) == []


def test_keyboard_interrupt_removes_the_temporary_file(server, cache, monkeypatch):
    urls = [server.add('/1/p.bin', PAYLOAD), server.add('/2/p.bin', PAYLOAD)]
    seen = []

    def interrupt(path, md5):
        seen.append(os.path.basename(path))  # the temporary file, complete but unchecked
        raise KeyboardInterrupt

    monkeypatch.setattr(utils, '_checksum_problem', interrupt)
    with pytest.raises(KeyboardInterrupt):
        get_file(urls, md5=PAYLOAD_MD5, root=cache, quiet=True)
    assert len(seen) == 1 and seen[0].endswith('.part')
    assert server.hits == ['/1/p.bin']  # Ctrl-C stops: no next mirror
    assert listing(cache) == []


# -----------------------------------------------------------------------------
# The cache
# -----------------------------------------------------------------------------
def test_cached_file_is_returned_without_network(server, cache, monkeypatch):
    raw = get_file(server.add('/p.bin', PAYLOAD), md5=PAYLOAD_MD5, root=cache, quiet=True)
    gz = get_file(server.add('/d.gz', GZ), md5=CONTENT_MD5, root=cache, quiet=True)
    server.stop()
    monkeypatch.setattr(utils, '_open_url', no_network)
    assert get_file(server.url('/p.bin'), md5=PAYLOAD_MD5, root=cache) == raw
    assert get_file(server.url('/d.gz'), md5=CONTENT_MD5, root=cache) == gz
    assert get_file(server.url('/p.bin'), root=cache) == raw  # no md5: any cached file
    assert server.hits == ['/p.bin', '/d.gz']


def test_cached_file_failing_its_checksum_is_downloaded_again(server, cache):
    cache.mkdir()
    (cache / 'p.bin').write_bytes(b'corrupt')
    path = get_file(server.add('/p.bin', PAYLOAD), md5=PAYLOAD_MD5, root=cache, quiet=True)
    with open(path, 'rb') as file:
        assert file.read() == PAYLOAD
    assert listing(cache) == ['p.bin']


def test_cached_file_failing_its_checksum_and_the_download_too(server, cache):
    cache.mkdir()
    (cache / 'p.bin').write_bytes(b'corrupt')
    with pytest.raises(DownloadError) as info:
        get_file(server.add('/p.bin', b'also wrong'), md5=PAYLOAD_MD5, root=cache,
                 quiet=True)
    message = str(info.value)
    assert 'cached copy' in message and hashlib.md5(b'corrupt').hexdigest() in message
    assert listing(cache) == ['p.bin']  # the user's file is left alone, no temporary file
    assert (cache / 'p.bin').read_bytes() == b'corrupt'


def test_offline_cached_file_failing_its_checksum(cache, monkeypatch):
    monkeypatch.setattr(utils, '_open_url', no_network)
    cache.mkdir()
    (cache / 'p.bin').write_bytes(b'corrupt')
    with pytest.raises(ValueError) as info:
        get_file('https://example.invalid/p.bin', md5=PAYLOAD_MD5, root=cache)
    message = str(info.value)
    assert str(cache / 'p.bin') in message and PAYLOAD_MD5 in message
    assert hashlib.md5(b'corrupt').hexdigest() in message
    assert 'ZEROGRAD_OFFLINE' in message


def test_offline_with_nothing_cached(cache, monkeypatch):
    monkeypatch.setattr(utils, '_open_url', no_network)
    urls = ['https://example.invalid/data/t.gz', 'https://mirror.invalid/t.gz']
    with pytest.raises(DownloadError) as info:
        get_file(urls, md5=CONTENT_MD5, root=cache)
    error = info.value
    message = str(error)
    assert "'t.gz'" in message and str(cache) in message
    assert urls[0] in message and urls[1] in message
    assert os.path.join(str(cache), 't.gz') in message
    assert error.offline and error.reasons == [] and error.file_name == 't.gz'
    assert not cache.exists()


@pytest.mark.parametrize('value', ['1', 'true', 'YES', 'on'])
def test_offline_switch_values(value, monkeypatch):
    monkeypatch.setenv('ZEROGRAD_OFFLINE', value)
    assert utils.is_offline()


@pytest.mark.parametrize('value', ['0', '', 'no', 'false'])
def test_online_switch_values(value, monkeypatch):
    monkeypatch.setenv('ZEROGRAD_OFFLINE', value)
    assert not utils.is_offline()


def test_zerograd_data_is_read_at_call_time(server, tmp_path, monkeypatch):
    url = server.add('/p.bin', PAYLOAD)
    first, second, explicit = tmp_path / 'first', tmp_path / 'second', tmp_path / 'explicit'
    monkeypatch.setenv('ZEROGRAD_DATA', str(first))
    assert get_file(url, quiet=True) == str(first / 'p.bin')
    monkeypatch.setenv('ZEROGRAD_DATA', str(second))
    assert get_file(url, quiet=True) == str(second / 'p.bin')
    assert get_file(url, root=explicit, quiet=True) == str(explicit / 'p.bin')  # root wins
    monkeypatch.delenv('ZEROGRAD_DATA')
    fallback = tmp_path / 'cache-dir'
    monkeypatch.setattr(utils, 'cache_dir', str(fallback))
    assert get_file(url, quiet=True) == str(fallback / 'p.bin')
    assert utils.data_dir() == str(fallback)
    assert len(server.hits) == 4


# -----------------------------------------------------------------------------
# Arguments
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['../escape.bin', 'a/b.bin', '..', '.', '', 'a\\b.bin',
                                  '/abs.bin'])
def test_bad_file_names_rejected(name, cache, monkeypatch):
    monkeypatch.setattr(utils, '_open_url', no_network)
    with pytest.raises(ValueError, match='file_name'):
        get_file('https://example.invalid/x.bin', name, root=cache)
    assert not cache.exists()


def test_file_name_from_a_url_without_one(cache):
    with pytest.raises(ValueError, match='cannot tell a file name'):
        get_file('https://example.invalid/folder/', root=cache)


@pytest.mark.parametrize('url', ['ftp://127.0.0.1/x.bin', 'data:text/plain,hello',
                                 'javascript:alert(1)', '/etc/passwd', 'x.bin',
                                 'gopher://127.0.0.1/x'])
def test_non_http_schemes_rejected(url, cache, monkeypatch):
    monkeypatch.delenv('ZEROGRAD_OFFLINE')
    monkeypatch.setattr(utils, '_open_url', no_network)
    with pytest.raises(ValueError, match='only http, https and file'):
        get_file(url, 'x.bin', root=cache)
    with pytest.raises(ValueError, match='only http, https and file'):
        get_file('https://example.invalid/x.bin', root=cache, mirrors=[url])
    assert not cache.exists()


def test_bad_md5_argument(cache):
    for md5 in ('abc', 'z' * 32, 123):
        with pytest.raises(ValueError, match='32 hexadecimal digits'):
            get_file('https://example.invalid/x.bin', md5=md5, root=cache)


def test_verify_file_and_file_md5(tmp_path):
    raw, gz, cut = tmp_path / 'raw.bin', tmp_path / 'c.gz', tmp_path / 'cut.gz'
    raw.write_bytes(PAYLOAD)
    gz.write_bytes(GZ)
    cut.write_bytes(GZ[:-20])
    assert utils.file_md5(raw) == PAYLOAD_MD5
    assert utils.verify_file(raw, PAYLOAD_MD5) and not utils.verify_file(raw, CONTENT_MD5)
    assert utils.verify_file(gz, CONTENT_MD5) and utils.verify_file(gz, GZ_MD5)
    assert not utils.verify_file(cut, CONTENT_MD5)
    assert not utils.verify_file(tmp_path / 'absent', PAYLOAD_MD5)
