/* c-http: hand-written epoll HTTP/1.1 "Hello, World!" server, the near-limit
 * reference peer for sockloop's http benchmarks (not part of the library).
 *
 * Same loop discipline as c-echo.c: edge-triggered, each connection
 * registered once with EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, a short read
 * means drained, write first and queue only on EAGAIN, accept4 until EAGAIN.
 * Keep-alive always; a request is a head ending in "\r\n\r\n" (no bodies);
 * every complete request in what was read is answered, the whole pipelined
 * batch with one write.
 *
 * Build: gcc -O2 -o c-http c-http.c      Run: c-http --addr 127.0.0.1:PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_HEAD (1 << 20)

static const char RESP[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
#define RESP_LEN (sizeof RESP - 1)
#define BATCH_MAX 1024 /* responses assembled per write */

struct buffer { char *p; size_t off, len, cap; };

struct conn {
    int fd;
    struct buffer in;  /* an incomplete request head carried between reads */
    struct buffer out; /* responses not yet taken by the kernel */
};

static __thread char rbuf[BUF_SIZE]; /* one per loop thread */
static char batch[BATCH_MAX * RESP_LEN];

static int bound_port;

static int listen_on(const char *spec, int reuseport, int quiet) {
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) return -1;
    memcpy(host, spec, colon - spec);
    host[colon - spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4096)) return -1;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
    if (!quiet) fprintf(stderr, "listening on %s:%d\n", host, ntohs(sa.sin_port));
    bound_port = ntohs(sa.sin_port);
    return fd;
}

static int append(struct buffer *b, const char *p, size_t n) {
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off) {
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static void close_conn(struct conn *c) {
    close(c->fd);
    free(c->in.p);
    free(c->out.p);
    free(c);
}

static int send_or_queue(struct conn *c, const char *p, size_t n) {
    if (c->out.len > c->out.off) return append(&c->out, p, n);
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w > 0) { p += w; n -= w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return append(&c->out, p, n);
        return -1;
    }
    return 0;
}

static int flush(struct conn *c) {
    struct buffer *b = &c->out;
    while (b->len > b->off) {
        ssize_t w = write(c->fd, b->p + b->off, b->len - b->off);
        if (w > 0) { b->off += w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return 0;
        return -1;
    }
    b->off = b->len = 0;
    return 0;
}

/* Counts complete heads in p[0..n), sets *used to the bytes they span. */
static size_t count_requests(const char *p, size_t n, size_t *used) {
    size_t count = 0, pos = 0;
    const char *e;
    while ((e = memmem(p + pos, n - pos, "\r\n\r\n", 4))) {
        pos = (e - p) + 4;
        count++;
    }
    *used = pos;
    return count;
}

/* Answers `count` requests with as few writes as possible (one per BATCH_MAX). */
static int respond(struct conn *c, size_t count) {
    while (count > 0) {
        size_t k = count < BATCH_MAX ? count : BATCH_MAX;
        if (send_or_queue(c, batch, k * RESP_LEN)) return -1;
        count -= k;
    }
    return 0;
}

/* Handles n freshly read bytes. -1: close. */
static int on_data(struct conn *c, const char *p, size_t n) {
    size_t used, count;
    if (c->in.len == c->in.off) { /* common case: parse straight from rbuf */
        count = count_requests(p, n, &used);
        if (used < n && append(&c->in, p + used, n - used)) return -1;
    } else {
        if (append(&c->in, p, n)) return -1;
        count = count_requests(c->in.p + c->in.off, c->in.len - c->in.off, &used);
        c->in.off += used;
        if (c->in.off == c->in.len) c->in.off = c->in.len = 0;
    }
    if (c->in.len - c->in.off > MAX_HEAD) return -1;
    return respond(c, count);
}

static int drain(struct conn *c, int rdhup) {
    for (;;) {
        ssize_t n = read(c->fd, rbuf, sizeof rbuf);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        if (on_data(c, rbuf, n)) return -1;
        if ((size_t)n < sizeof rbuf && !rdhup) return 0; /* short read: drained */
    }
}

static void *serve(void *arg) {
    int lfd = (int)(intptr_t)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); exit(1); }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (!c) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED) continue;
                        if (errno != EAGAIN) perror("accept4");
                        break;
                    }
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce)) close_conn(c);
                }
                continue;
            }
            if (e & (EPOLLERR | EPOLLHUP)) { close_conn(c); continue; }
            if ((e & EPOLLOUT) && flush(c)) { close_conn(c); continue; }
            if ((e & (EPOLLIN | EPOLLRDHUP)) && drain(c, e & EPOLLRDHUP)) close_conn(c);
        }
    }
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1:8080";
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--addr") && i + 1 < argc) addr = argv[++i];
        else if (!strncmp(argv[i], "--addr=", 7)) addr = argv[i] + 7;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s --addr HOST:PORT [--threads N]\n", argv[0]); return 2; }
    }
    if (threads < 1) { fprintf(stderr, "--threads must be at least 1\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < BATCH_MAX; i++) memcpy(batch + i * RESP_LEN, RESP, RESP_LEN);
    /* --threads N: N loops, each with its own SO_REUSEPORT socket on the
     * same port (the kernel spreads connections by hash), nothing shared. */
    int lfd = listen_on(addr, threads > 1, 0);
    if (lfd < 0) { perror("listen"); return 1; }
    char spec[300];
    const char *colon = strrchr(addr, ':');
    snprintf(spec, sizeof spec, "%.*s:%d", (int)(colon - addr), addr, bound_port);
    for (int t = 1; t < threads; t++) {
        int fd = listen_on(spec, 1, 1);
        if (fd < 0) { perror("listen"); return 1; }
        pthread_t th;
        if (pthread_create(&th, NULL, serve, (void *)(intptr_t)fd)) { perror("pthread_create"); return 1; }
    }
    serve((void *)(intptr_t)lfd);
    return 1;
}
