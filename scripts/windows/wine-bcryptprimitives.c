/* A stand-in for bcryptprimitives.dll, for the Wine prefixes of scripts/windows.sh only.
 *
 * Rust's standard library (1.78 and later) takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll, which every supported Windows has and Wine 8.0 (Debian 12) does not:
 * without it every Rust program fails to load under Wine (status 53, nothing printed). This
 * DLL answers ProcessPrng from RtlGenRandom (advapi32), which Wine has. It is never shipped:
 * real Windows loads its own. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T size) {
    /* RtlGenRandom takes a ULONG length: hand it the buffer in pieces. */
    const SIZE_T piece = 1u << 30;
    while (size > 0) {
        ULONG now = (ULONG)(size < piece ? size : piece);
        if (!RtlGenRandom(out, now)) return FALSE;
        out += now;
        size -= now;
    }
    return TRUE;
}
