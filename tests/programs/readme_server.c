/*
 * readme_server.c - the `./server` of README.md's "Long-running programs"
 * section for tests/t_docs.py, shortened so that it ends by itself: 50
 * requests, each a handle_request call (which calls parse_request) and a
 * query call; query 10 sleeps 250 ms (README's --snapshot-slower-than
 * 200ms), request 30 calls fail_request (README's --snapshot-on '^fail').
 */
#include <stdio.h>
#include <unistd.h>

static volatile int sink;

__attribute__((noinline)) int parse_request(int i)
{
    __asm__ volatile("");
    return i % 7;
}

__attribute__((noinline)) int handle_request(int i)
{
    int r = parse_request(i);
    __asm__ volatile("");
    return r + 1;
}

__attribute__((noinline)) void query(int i)
{
    if (i == 10)
        usleep(250000);
    __asm__ volatile("");
}

__attribute__((noinline)) void fail_request(int i)
{
    sink = i;
    __asm__ volatile("");
}

int main(void)
{
    int n = 0;
    for (int i = 0; i < 50; i++) {
        n += handle_request(i);
        query(i);
        if (i == 30)
            fail_request(i);
    }
    printf("served %d\n", n);
    return 0;
}
