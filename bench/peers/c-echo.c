/* c-echo: hand-written epoll echo server, the near-limit reference peer for
 * sockloop's benchmarks (not part of the library).
 *
 * Edge-triggered; every connection is registered once with
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET and never modified. A read shorter than
 * the buffer means the socket is drained (no extra read just to see EAGAIN).
 * Writes go straight out; only what the kernel refuses (EAGAIN) is queued and
 * flushed on the next EPOLLOUT edge. accept4 runs until EAGAIN.
 * So one echo round trip costs one read and one write, plus a share of one
 * epoll_wait.
 *
 * Build: gcc -O2 -o c-echo c-echo.c      Run: c-echo --addr 127.0.0.1:PORT
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
#define MAX_PENDING (1 << 20) /* stop reading while this much waits to be sent */

struct conn {
    int fd;
    char *out;      /* queued bytes not yet taken by the kernel */
    size_t off, len, cap;
};

static __thread char buf[BUF_SIZE]; /* one per loop thread */

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

static void close_conn(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->out);
    free(c);
}

/* Appends to the output queue. */
static int queue(struct conn *c, const char *p, size_t n) {
    if (c->off && c->off == c->len) c->off = c->len = 0;
    if (c->len + n > c->cap) {
        if (c->off) { /* compact first */
            memmove(c->out, c->out + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n) cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) return -1;
        c->out = o;
        c->cap = cap;
    }
    memcpy(c->out + c->len, p, n);
    c->len += n;
    return 0;
}

/* Writes p[0..n); queues what the kernel does not take. -1: close. */
static int send_or_queue(struct conn *c, const char *p, size_t n) {
    if (c->len > c->off) return queue(c, p, n); /* keep order */
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w > 0) { p += w; n -= w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return queue(c, p, n);
        return -1;
    }
    return 0;
}

/* Flushes the queue until empty or EAGAIN. -1: close. */
static int flush(struct conn *c) {
    while (c->len > c->off) {
        ssize_t w = write(c->fd, c->out + c->off, c->len - c->off);
        if (w > 0) { c->off += w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return 0;
        return -1;
    }
    c->off = c->len = 0;
    return 0;
}

/* Reads until a short read (drained), echoing. -1: close. */
static int drain(struct conn *c, int rdhup) {
    while (c->len - c->off < MAX_PENDING) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0) return -1;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -1;
        }
        if (send_or_queue(c, buf, n)) return -1;
        /* Short read: drained. Unless the peer half-closed, then read on to EOF. */
        if ((size_t)n < sizeof buf && !rdhup) return 0;
    }
    return 0; /* paused by backpressure; resumed after the next flush */
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
            if (!c) { /* listener: accept until EAGAIN */
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
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce)) { close_conn(c); }
                }
                continue;
            }
            if (e & (EPOLLERR | EPOLLHUP)) { close_conn(c); continue; }
            int was_paused = c->len - c->off >= MAX_PENDING;
            if ((e & EPOLLOUT) && flush(c)) { close_conn(c); continue; }
            if ((e & (EPOLLIN | EPOLLRDHUP)) || (was_paused && c->len == c->off)) {
                if (drain(c, e & EPOLLRDHUP)) { close_conn(c); continue; }
            }
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
