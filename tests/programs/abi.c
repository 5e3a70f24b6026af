/*
 * abi.c - functions whose arguments and results travel in every kind of
 * register the x86_64 SysV ABI uses, so that a trampoline that clobbers one
 * changes the printed results. The test compares stdout traced and untraced.
 *
 * Every function below main() is called exactly once per round (ROUNDS
 * rounds), with inputs that depend on the round number through volatile
 * loads, so clang can neither fold the calls nor specialise them. Results are
 * printed with %a (exact bits). With -mavx2 (only where the CPU has AVX2),
 * avx_mix() takes and returns __m256d values in ymm registers.
 */
#include <complex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#if defined(__aarch64__)
/* aarch64 (t_aarch64): the same values in q registers */
typedef float v4f __attribute__((vector_size(16)));
#define __m128 v4f
#define _mm_set_ps(a, b, c, d) ((v4f){(d), (c), (b), (a)})
#define _mm_storeu_ps(p, v)                                                                        \
    do {                                                                                           \
        v4f v_ = (v);                                                                              \
        memcpy((p), &v_, 16);                                                                      \
    } while (0)
#else
#include <xmmintrin.h>
#endif

#define ROUNDS 5
#define NOINLINE __attribute__((noinline))

struct pair {
    long a, b;
}; /* rax:rdx */
struct big {
    long v[6];
}; /* memory, via sret pointer in rdi */
struct dpair {
    double x, y;
}; /* xmm0:xmm1 */
struct mixed {
    double x;
    long y;
}; /* xmm0, rax */
struct quad {
    float a, b, c, d;
}; /* xmm0 (a,b), xmm1 (c,d) */
struct triple {
    double x, y, z;
}; /* memory */

/* 10 floating-point arguments: 8 in xmm0-7, 2 on the stack; ints in rdi, rsi. */
NOINLINE double fp_many(float a, double b, float c, double d, float e, double f, float g, double h,
                        double i, float j, int k, long l)
{
    double r = a;
    r = r * 3 + b;
    r = r * 3 + c;
    r = r * 3 + d;
    r = r * 3 + e;
    r = r * 3 + f;
    r = r * 3 + g;
    r = r * 3 + h;
    r = r * 3 + i;
    r = r * 3 + j;
    return r * k - l;
}

/* 8 integer arguments: rdi rsi rdx rcx r8 r9 and 2 on the stack. */
NOINLINE long int_many(long a, long b, long c, long d, long e, long f, long g, long h)
{
    return ((((((a * 7 + b) * 7 + c) * 7 + d) * 7 + e) * 7 + f) * 7 + g) * 7 + h;
}

NOINLINE float fl_ret(float a, float b)
{
    return a / b + 0.25f;
}

/* varargs: the caller puts the number of vector registers used in al. */
NOINLINE double vsum(int n, ...)
{
    va_list ap;
    double s = 0;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        if (i % 3 == 2)
            s = s * 1.5 + va_arg(ap, int);
        else
            s = s * 1.5 + va_arg(ap, double);
    }
    va_end(ap);
    return s;
}

NOINLINE int fmt(char *buf, size_t size, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vsnprintf(buf, size, f, ap);
    va_end(ap);
    return r;
}

NOINLINE struct pair ret_pair(long x)
{
    return (struct pair){x * 3 + 1, -x * 5 - 2};
}

NOINLINE struct big ret_big(long x)
{
    struct big b;
    for (int i = 0; i < 6; i++)
        b.v[i] = x * (i + 1) + i;
    return b;
}

NOINLINE struct dpair ret_dpair(double x)
{
    return (struct dpair){x / 3, x * 7.5};
}

NOINLINE struct mixed ret_mixed(double x, long y)
{
    return (struct mixed){x * 0.1, y * 9};
}

NOINLINE struct quad ret_quad(float x)
{
    return (struct quad){x, x / 3, x * 5, -x / 7};
}

NOINLINE struct triple ret_triple(double x)
{
    return (struct triple){x + 0.5, x / 9, x * x};
}

NOINLINE long double ld_mul(long double a, long double b, long double c)
{
    return a * b / c + 1.0L / 3;
}

NOINLINE double complex c_mul(double complex a, double complex b)
{
    return a * b + I / 3;
}

NOINLINE __int128 i128_mix(__int128 a, __int128 b)
{
    return a * 1000003 + (b >> 7) - (a ^ b);
}

NOINLINE __m128 sse_mix(__m128 a, __m128 b)
{
#if defined(__aarch64__)
    return a * b + a / b;
#else
    return _mm_add_ps(_mm_mul_ps(a, b), _mm_div_ps(a, b));
#endif
}

#ifdef __AVX2__
NOINLINE __m256d avx_mix(__m256d a, __m256d b, __m256d c, double k)
{
    return _mm256_add_pd(_mm256_mul_pd(a, b), _mm256_div_pd(c, _mm256_set1_pd(k)));
}
#endif

static volatile double vd = 1.0;
static volatile long vl = 1;

int main(void)
{
    char buf[256];
    for (int r = 0; r < ROUNDS; r++) {
        double d = vd * (r + 1) / 7;
        long l = vl * (r + 11);
        float f = (float)(d * 1.3);

        printf("round %d\n", r);
        printf("fp_many %a\n", fp_many(f, d, f + 1, d + 2, f + 3, d + 4, f + 5, d + 6, d + 7, f + 8,
                                       (int)l, l * 3));
        printf("int_many %ld\n", int_many(l, l + 1, l + 2, l + 3, l + 4, l + 5, l + 6, l + 7));
        printf("fl_ret %a\n", fl_ret(f, f + 2));
        printf("vsum %a\n", vsum(8, d, d + 1, (int)l, d + 2, d + 3, (int)l + 1, d + 4, d + 5));
        int n = fmt(buf, sizeof buf, "%d %.17g %ld %.17g %s %.17g %.17g %.17g %.17g %.17g %.17g", r,
                    d, l, d / 3, "str", d * 2, d * 3, d * 4, d * 5, d * 6, d * 7);
        printf("fmt %d [%s]\n", n, buf);
        struct pair p = ret_pair(l);
        printf("ret_pair %ld %ld\n", p.a, p.b);
        struct big b = ret_big(l);
        printf("ret_big %ld %ld %ld %ld %ld %ld\n", b.v[0], b.v[1], b.v[2], b.v[3], b.v[4], b.v[5]);
        struct dpair dp = ret_dpair(d);
        printf("ret_dpair %a %a\n", dp.x, dp.y);
        struct mixed m = ret_mixed(d, l);
        printf("ret_mixed %a %ld\n", m.x, m.y);
        struct quad q = ret_quad(f);
        printf("ret_quad %a %a %a %a\n", q.a, q.b, q.c, q.d);
        struct triple t = ret_triple(d);
        printf("ret_triple %a %a %a\n", t.x, t.y, t.z);
        long double ld = ld_mul((long double)d, (long double)l, 3.0L);
        printf("ld_mul %La\n", ld);
        double complex c = c_mul(d + 2 * I, l - d * I);
        printf("c_mul %a %a\n", creal(c), cimag(c));
        __int128 w = i128_mix((__int128)l << 70 | 12345, -((__int128)l << 64) - 99);
        printf("i128_mix %016llx %016llx\n", (unsigned long long)(w >> 64), (unsigned long long)w);
        float sv[4];
        _mm_storeu_ps(sv, sse_mix(_mm_set_ps(f, f + 1, f + 2, f + 3), _mm_set_ps(2, 3, 5, 7)));
        printf("sse_mix %a %a %a %a\n", sv[0], sv[1], sv[2], sv[3]);
#ifdef __AVX2__
        double av[4];
        _mm256_storeu_pd(av, avx_mix(_mm256_set_pd(d, d + 1, d + 2, d + 3),
                                     _mm256_set_pd(l, l + 1, l + 2, l + 3),
                                     _mm256_set_pd(d * 9, d * 8, d * 7, d * 6), 3.0));
        printf("avx_mix %a %a %a %a\n", av[0], av[1], av[2], av[3]);
#endif
    }
    printf("rounds %d\n", ROUNDS);
#ifdef __AVX2__
    printf("avx2 1\n");
#else
    printf("avx2 0\n");
#endif
    return 0;
}
