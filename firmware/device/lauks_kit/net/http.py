# A minimal HTTP/1.0 GET over the board's socket, for the files of an update: the body goes to a sink chunk by
# chunk (into a file while it is hashed), so a file of any size needs only one chunk of RAM.
CHUNK = 1024
MAX_HEAD = 2048


class HTTPError(OSError):
    pass


def split_url(url):
    """(host, port, path) of an http:// URL."""
    if not url.startswith("http://"):
        raise HTTPError("only http:// URLs: %s" % url[:80])
    rest = url[7:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, port = hostport, 80
    colon = hostport.rfind(":")
    if colon >= 0 and hostport[colon + 1:].isdigit():
        host, port = hostport[:colon], int(hostport[colon + 1:])
    if not host:
        raise HTTPError("no host in %s" % url[:80])
    return host, port, path


def _head(sock):
    """(status code, headers dict, body bytes already read) of a response."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buf) > MAX_HEAD:
            raise HTTPError("response headers longer than %d bytes" % MAX_HEAD)
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise HTTPError("connection closed before the response headers")
        buf += chunk
    lines = buf[:end].decode().split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HTTPError("not an HTTP response: %s" % lines[0][:60])
    headers = {}
    for line in lines[1:]:
        colon = line.find(":")
        if colon > 0:
            headers[line[:colon].strip().lower()] = line[colon + 1:].strip()
    return int(parts[1]), headers, buf[end + 4:]


def get(connect, url, sink, limit=None):
    """GET url, handing the body to sink(bytes) chunk by chunk; returns its length.
    connect(host, port) gives a socket; HTTPError on any status but 200 or a body cut short."""
    host, port, path = split_url(url)
    sock = connect(host, port)
    try:
        request = "GET %s HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, host, port)
        view = memoryview(request.encode())
        while len(view):
            n = sock.send(view)
            if not n:
                raise HTTPError("connection closed while sending the request")
            view = view[n:]
        code, headers, body = _head(sock)
        if code != 200:
            raise HTTPError("HTTP %d for %s" % (code, path[-80:]))
        if "chunked" in headers.get("transfer-encoding", ""):
            raise HTTPError("the server sent a chunked body to an HTTP/1.0 request")
        length = headers.get("content-length")
        length = int(length) if length is not None and length.isdigit() else None
        if limit is not None and length is not None and length > limit:
            raise HTTPError("%s is %d bytes, more than %d" % (path[-80:], length, limit))
        got = 0
        while True:
            if length is not None and len(body) > length - got:
                body = body[:length - got]
            if body:
                got += len(body)
                if limit is not None and got > limit:
                    raise HTTPError("%s is more than %d bytes" % (path[-80:], limit))
                sink(body)
            if length is not None and got >= length:
                return got
            body = sock.recv(CHUNK)
            if not body:
                if length is not None:
                    raise HTTPError("connection closed after %d of %d bytes" % (got, length))
                return got
    finally:
        sock.close()


def get_bytes(connect, url, limit):
    """The whole body of a small response (the manifest), at most limit bytes."""
    out = bytearray()
    get(connect, url, out.extend, limit)
    return bytes(out)
