"""The kit's HTTP entrypoint: nameko's, on a server whose connections send without delay.

nameko's server (eventlet.wsgi) writes an answer in several `send` calls. With Nagle's algorithm
on, the last part of an answer larger than a few segments waits for the client's ACK of the
previous one, and a client delays that ACK by up to 40 ms: a 43 kB customer page took 56 ms at
the client for 11 ms of work in the gateway (issue 11). TCP_NODELAY on the listening socket is
inherited by every connection it accepts.
"""
import socket

from nameko.web import handlers, server


class WebServer(server.WebServer):
    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().get_wsgi_server(sock, wsgi_app, **kwargs)


class HttpRequestHandler(handlers.HttpRequestHandler):
    server = WebServer()


http = HttpRequestHandler.decorator
