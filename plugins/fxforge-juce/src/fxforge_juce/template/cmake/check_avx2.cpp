// Exits 0 when the CPU running it supports AVX2 and FMA (used by try_run).
int main()
{
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 0 : 1;
}
