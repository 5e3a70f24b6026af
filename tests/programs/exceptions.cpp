// exceptions.cpp - C++ exceptions thrown through instrumented frames.
//
// ROUNDS times, sfx::catcher() calls sfx::middle(), which calls
// sfx::thrower(DEPTH). thrower recurses down to depth 0 and throws; every
// level holds an sfx::Guard whose destructor calls sfx::guard_dtor() during
// unwinding. middle() catches, calls sfx::on_catch(), and rethrows (`throw;`);
// catcher() catches the rethrown exception. Per round: DEPTH+1 thrower
// entries and no thrower exit, DEPTH+1 guard_dtor calls, one middle entry and
// no middle exit, one catcher entry and exit, one on_catch entry and exit.
// Prints the messages caught, "pid", "tid" and the counts.
#include <stdexcept>
#include <string>
#include <cstdio>
#include <unistd.h>

#define ROUNDS 40
#define DEPTH 12

namespace sfx
{

static volatile long sink;
static long guard_calls;

__attribute__((noinline)) void guard_dtor(int depth)
{
    guard_calls++;
    sink += depth;
}

struct Guard {
    int depth;
    explicit Guard(int d) : depth(d) {}
    ~Guard() { guard_dtor(depth); }
};

__attribute__((noinline)) int thrower(int depth)
{
    Guard g(depth);
    if (depth == 0)
        throw std::runtime_error("bottom reached at round " + std::to_string(sink));
    int r = thrower(depth - 1);
    asm volatile("" : "+r"(r));
    return r + 1;
}

__attribute__((noinline)) void on_catch(const char *what)
{
    sink += what[0];
}

__attribute__((noinline)) int middle(int depth)
{
    try {
        return thrower(depth);
    } catch (const std::runtime_error &e) {
        on_catch(e.what());
        throw;
    }
}

__attribute__((noinline)) std::string catcher(int round)
{
    try {
        middle(DEPTH);
    } catch (const std::exception &e) {
        return std::string("caught: ") + e.what() + " in round " + std::to_string(round);
    }
    return "not caught";
}

} // namespace sfx

int main()
{
    for (int r = 0; r < ROUNDS; r++) {
        std::string s = sfx::catcher(r);
        if (r % 10 == 0)
            std::printf("%s\n", s.c_str());
    }
    std::printf("pid %d\n", getpid());
    std::printf("tid %d\n", gettid());
    std::printf("rounds %d depth %d guard_calls %ld\n", ROUNDS, DEPTH, sfx::guard_calls);
    return 0;
}
