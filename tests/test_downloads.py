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
import subprocess
import sys
import threading
import time
import types
import warnings

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
    'redirect' answers 302 to the URL in body; 'no-length' sends the body without a
    Content-Length and closes (so a body cut short looks complete); 'no-content' answers
    204; 'gzip' and 'gzip-no-length' send the body gzip-compressed with Content-Encoding:
    gzip; 'gzip-label' sends the body as it is, labelled Content-Encoding: gzip; 'br' labels
    it br; 'drip' sends one byte every 0.1 s; 'drip-headers' one header byte every 0.1 s;
    'blocks' the body in 64 KiB blocks 0.4 s apart. Any other path is 404. Every response
    ends within a few seconds, whether or not the client is still there.
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
                elif kind == 'no-content':
                    self.send_response(204)
                    self.end_headers()
                elif kind == 'drip-headers':
                    self.wfile.write(b'HTTP/1.0 200 OK\r\n')
                    self.slowly(b'X-Slow: ' + b'a' * 50, 0.1)
                elif kind in ('no-length', 'gzip', 'gzip-no-length', 'gzip-label', 'br',
                              'drip', 'blocks'):
                    self.send_response(200)
                    data = gzip.compress(body) if kind.startswith('gzip-n') or kind == 'gzip' \
                        else body
                    if kind in ('gzip', 'gzip-no-length', 'gzip-label'):
                        self.send_header('Content-Encoding', 'gzip')
                    if kind == 'br':
                        self.send_header('Content-Encoding', 'br')
                    if kind not in ('no-length', 'gzip-no-length'):
                        self.send_header('Content-Length', str(len(data)))
                    self.end_headers()
                    if kind == 'drip':
                        self.slowly(data, 0.1)
                    elif kind == 'blocks':
                        for i in range(0, len(data), 1 << 16):
                            time.sleep(0 if i == 0 else 0.4)
                            self.wfile.write(data[i:i + (1 << 16)])
                            self.wfile.flush()
                    else:
                        self.wfile.write(data)
                    self.close_connection = True
                else:
                    self.send_response(200)
                    extra = 1000 if kind == 'short' else 0
                    self.send_header('Content-Length', str(len(body) + extra))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True  # HTTP/1.0: the socket closes now

            def slowly(self, data, delay):
                for i in range(len(data)):
                    try:
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                    except OSError:  # the client has gone
                        return
                    time.sleep(delay)
                self.close_connection = True

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


@pytest.mark.parametrize('name', [3, b'x.bin', ['x.bin']])
def test_a_file_name_that_is_not_a_str_is_a_type_error(name, cache, monkeypatch):
    monkeypatch.setattr(utils, '_open_url', no_network)
    with pytest.raises(TypeError, match=r'get_file: file_name must be a non-empty str, got '):
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


# -----------------------------------------------------------------------------
# What cannot be trusted: no Content-Length, empty bodies, Content-Encoding
# -----------------------------------------------------------------------------
def test_a_body_cut_short_without_content_length_fails_its_expected_size(server, cache):
    url = server.add('/cut.txt', PAYLOAD[:5000], kind='no-length')
    with pytest.raises(DownloadError) as info:
        get_file(url, size=len(PAYLOAD), root=cache, quiet=True)
    assert 'size mismatch: expected 10,248 bytes, got 5,000' in str(info.value)
    assert '10,248 bytes' in str(info.value).splitlines()[-1]  # what to place by hand
    assert listing(cache) == []
    # the whole file, still without a Content-Length, verifies by its size alone
    whole = server.add('/whole.txt', PAYLOAD, kind='no-length')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # verified: no warning
        path = get_file(whole, size=len(PAYLOAD), root=cache, quiet=True)
    assert open(path, 'rb').read() == PAYLOAD


def test_a_cached_file_of_the_wrong_size_is_not_used(server, cache, monkeypatch):
    cache.mkdir()
    (cache / 'p.bin').write_bytes(PAYLOAD[:100])
    url = server.add('/p.bin', PAYLOAD)
    path = get_file(url, size=len(PAYLOAD), root=cache, quiet=True)
    assert open(path, 'rb').read() == PAYLOAD and server.hits == ['/p.bin']
    (cache / 'p.bin').write_bytes(PAYLOAD[:100])
    monkeypatch.setenv('ZEROGRAD_OFFLINE', '1')
    with pytest.raises(ValueError, match=r'size mismatch: expected 10,248 bytes, got 100'):
        get_file(url, size=len(PAYLOAD), root=cache)


def test_an_unverifiable_download_is_kept_with_a_warning(server, cache):
    url = server.add('/plain.txt', PAYLOAD, kind='no-length')
    with pytest.warns(UserWarning) as record:
        path = get_file(url, root=cache, quiet=True)
    (warning,) = record
    message = str(warning.message)
    assert 'cannot be verified' in message and path in message and '\n' not in message
    assert 'no md5, no size and no Content-Length' in message
    assert open(path, 'rb').read() == PAYLOAD
    # with a Content-Length, or an md5, there is something to check: no warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        get_file(server.add('/counted.txt', PAYLOAD), root=cache, quiet=True)
        get_file(url, 'summed.txt', md5=PAYLOAD_MD5, root=cache, quiet=True)


@pytest.mark.parametrize('kind, reason', [('no-content', '204'), ('ok', 'empty file'),
                                          ('no-length', 'empty file')])
def test_no_content_and_empty_bodies_are_errors(kind, reason, server, cache):
    url = server.add('/nothing.bin', b'', kind=kind)
    with pytest.raises(DownloadError) as info:
        get_file(url, root=cache, quiet=True)
    assert reason in info.value.reasons[0][1]
    assert listing(cache) == []


@pytest.mark.parametrize('kind', ['gzip', 'gzip-no-length'])
def test_a_gzip_encoded_response_is_stored_decoded(kind, server, cache):
    url = server.add('/book.txt', CONTENT, kind=kind)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # gzip's CRC and length verify it: no warning
        path = get_file(url, root=cache, quiet=True)
    assert open(path, 'rb').read() == CONTENT  # never the compressed bytes
    assert listing(cache) == ['book.txt']
    os.remove(path)
    assert open(get_file(url, md5=CONTENT_MD5, root=cache, quiet=True), 'rb').read() == CONTENT


def test_a_gzip_encoded_response_cut_short_is_an_error(server, cache):
    url = server.add('/book.txt', GZ[:len(GZ) // 2], kind='gzip-label')
    with pytest.raises(DownloadError) as info:
        get_file(url, root=cache, quiet=True)
    assert 'cannot be decoded' in str(info.value) and 'truncated' in str(info.value)
    assert listing(cache) == []


def test_a_gz_file_its_server_labels_gzip_is_kept_as_published(server, cache):
    # S3-style: the .gz file's own bytes, sent with Content-Encoding: gzip
    url = server.add('/data.gz', GZ, kind='gzip-label')
    assert open(get_file(url, md5=GZ_MD5, root=cache, quiet=True), 'rb').read() == GZ
    os.remove(cache / 'data.gz')
    # MNIST-style: the MD5 of the decompressed content, and a .gz name
    assert open(get_file(url, md5=CONTENT_MD5, root=cache, quiet=True), 'rb').read() == GZ
    os.remove(cache / 'data.gz')
    assert open(get_file(url, size=len(GZ), root=cache, quiet=True), 'rb').read() == GZ


def test_an_unknown_content_encoding_is_refused(server, cache):
    url = server.add('/x.bin', PAYLOAD, kind='br')
    with pytest.raises(DownloadError, match="Content-Encoding 'br'"):
        get_file(url, root=cache, quiet=True)
    assert listing(cache) == []


# -----------------------------------------------------------------------------
# timeout: a deadline that moves only with progress
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('kind', ['drip', 'drip-headers'])
def test_a_server_sending_a_byte_at_a_time_hits_the_deadline(kind, server, cache):
    url = server.add('/slow.bin', b'x' * 60, kind=kind)  # 6 s at 10 bytes per second
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        get_file(url, root=cache, quiet=True, timeout=1)
    elapsed = time.monotonic() - start
    assert elapsed < 2.5, elapsed
    assert info.value.reasons[0][1].startswith(
        'TimeoutError: timed out: less than 64 KiB arrived in 1 s')
    assert listing(cache) == []


def test_the_deadline_moves_with_each_64_kib(server, cache):
    body = PAYLOAD * 25  # 256,200 bytes: four 64 KiB blocks 0.4 s apart, 1.2 s in all
    url = server.add('/big.bin', body, kind='blocks')
    start = time.monotonic()
    path = get_file(url, root=cache, quiet=True, timeout=1)
    assert time.monotonic() - start > 1.0  # longer than timeout, and still fine
    assert open(path, 'rb').read() == body


@pytest.mark.parametrize('timeout, error', [(0, ValueError), (-1, ValueError),
                                            (float('nan'), ValueError),
                                            (float('inf'), ValueError), ('3', TypeError),
                                            (None, TypeError), (True, TypeError)])
def test_bad_timeouts_are_clear_errors(timeout, error, server, cache):
    url = server.add('/p.bin', PAYLOAD)
    with pytest.raises(error, match=r'get_file: timeout must be a positive.* number of '
                                    r'seconds, got'):
        get_file(url, root=cache, quiet=True, timeout=timeout)
    assert server.hits == [] and listing(cache) == []


def test_bad_sizes_are_clear_errors(cache):
    for size, error in ((0, ValueError), (-5, ValueError), (1.5, TypeError), ('9', TypeError),
                        (True, TypeError)):
        with pytest.raises(error, match='get_file: size must be'):
            get_file('https://example.invalid/x.bin', root=cache, size=size)


# -----------------------------------------------------------------------------
# The environment: ZEROGRAD_OFFLINE and ZEROGRAD_DATA
# -----------------------------------------------------------------------------
@pytest.mark.parametrize('value', ['OFF', ' Off ', 'No', 'FALSE'])
def test_online_switch_values_any_case(value, monkeypatch):
    monkeypatch.setenv('ZEROGRAD_OFFLINE', value)
    assert not utils.is_offline()


@pytest.mark.parametrize('value', ['y', '2', 'enabled', 'offline', '-1'])
def test_unknown_offline_values_are_an_error(value, server, cache, monkeypatch):
    url = server.add('/p.bin', PAYLOAD)
    monkeypatch.setenv('ZEROGRAD_OFFLINE', value)
    with pytest.raises(ValueError) as info:
        utils.is_offline()
    message = str(info.value)
    assert 'ZEROGRAD_OFFLINE' in message and repr(value) in message
    assert '1, true, yes, on' in message and '0, false, no, off or empty' in message
    with pytest.raises(ValueError, match='ZEROGRAD_OFFLINE'):
        get_file(url, root=cache, quiet=True)
    assert server.hits == [] and listing(cache) == []  # nothing was downloaded


def test_a_relative_zerograd_data_does_not_move_with_the_working_directory(
        server, tmp_path, monkeypatch):
    first, second = tmp_path / 'first', tmp_path / 'second'
    first.mkdir()
    second.mkdir()
    relative = f'data-{tmp_path.name}'  # a value no other test has used
    monkeypatch.chdir(first)
    monkeypatch.setenv('ZEROGRAD_DATA', relative)
    assert utils.data_dir() == str(first / relative)
    monkeypatch.chdir(second)
    assert utils.data_dir() == str(first / relative)
    url = server.add('/p.bin', PAYLOAD)
    assert get_file(url, quiet=True) == str(first / relative / 'p.bin')
    assert listing(second) == []


def test_a_relative_zerograd_data_set_at_import_is_resolved_at_import(tmp_path):
    code = ('import os; from zerograd import utils; os.chdir(os.sep); '
            'print(utils.data_dir()); print(utils.cache_dir)')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ZEROGRAD_DATA='rel-data', PYTHONPATH=root)
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / 'rel-data')] * 2


def test_a_data_folder_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    a_file = tmp_path / 'hostname'
    a_file.write_text('not a folder')
    for root in (a_file, a_file / 'mnist'):
        with pytest.raises(ValueError) as info:
            get_file('https://example.invalid/x.bin', root=root)
        message = str(info.value)
        assert f'root={str(root)!r} must name a folder' in message
        assert f'{str(a_file)!r} is a file' in message
        with pytest.raises(ValueError, match='must name a folder'):
            utils.data_dir(root)
    monkeypatch.setenv('ZEROGRAD_DATA', str(a_file))
    for call in (utils.data_dir, lambda: get_file('https://example.invalid/x.bin')):
        with pytest.raises(ValueError) as info:
            call()
        assert f'ZEROGRAD_DATA={str(a_file)!r} must name a folder, but {str(a_file)!r} ' \
               f'is a file' in str(info.value)
    with pytest.raises(TypeError, match='root must be a str or os.PathLike'):
        utils.data_dir(5)
