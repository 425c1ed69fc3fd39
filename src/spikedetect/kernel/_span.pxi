# Included by _count.pyx (one module), before _scan.pxi: where a JSON string's bytes end - the
# first byte from i on that is a quote, a backslash, a control byte (< 32) or, when hi < 256, at
# least hi - 16 bytes at a time with SSE2 (every x86-64 CPU has it), byte by byte elsewhere and
# in a line's last 15 bytes. Both give the same index: test_counter_kernel_span.py holds the
# 16-byte path to the byte loop on every byte value at every position.

cdef extern from *:
    """
    #if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    #include <emmintrin.h>
    #define SPD_SPAN_SSE2 1
    #else
    #define SPD_SPAN_SSE2 0
    #endif

    static inline Py_ssize_t spd_span_bytes(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int hi) {
        for (; i < n; i++) {
            unsigned char c = s[i];
            if (c == '"' || c == '\\\\' || c < 32 || c >= hi) return i;
        }
        return n;
    }

    static inline Py_ssize_t spd_span(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int hi) {
    #if SPD_SPAN_SSE2
        /* unsigned comparisons as signed ones of the bytes with their top bit flipped */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\\\');
        const __m128i flip = _mm_set1_epi8((char)0x80);
        const __m128i below = _mm_set1_epi8((char)(32 ^ 0x80));
        const __m128i above = _mm_set1_epi8((char)(((hi - 1) & 0xFF) ^ 0x80));
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i*)(s + i));
            __m128i f = _mm_xor_si128(x, flip);
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                     _mm_cmplt_epi8(f, below));
            if (hi < 256) m = _mm_or_si128(m, _mm_cmpgt_epi8(f, above));
            int bits = _mm_movemask_epi8(m);
            if (bits) return i + __builtin_ctz((unsigned)bits);
            i += 16;
        }
    #endif
        return spd_span_bytes(s, i, n, hi);
    }
    """
    Py_ssize_t spd_span(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int hi) noexcept nogil
    Py_ssize_t spd_span_bytes(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int hi) noexcept nogil
    int SPD_SPAN_SSE2


def span_end(bytes raw, Py_ssize_t i, int hi, bint bytewise=False) -> int:
    """The index of the first byte of ``raw`` from ``i`` that ends a JSON string's span: a quote, a
    backslash, a byte below 32 or one of at least ``hi`` (256: none); ``len(raw)`` when none does
    (``bytewise``: the byte loop alone). For tests.

    >>> span_end(b'abc"def', 0, 128), span_end(b'ab\\\\c', 0, 128), span_end(b'ab\\xc3\\xa9"', 0, 256)
    (3, 2, 4)
    """
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    if not 0 <= i <= n or not 33 <= hi <= 256:
        raise ValueError("i or hi out of range")
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(raw)
    return spd_span_bytes(s, i, n, hi) if bytewise else spd_span(s, i, n, hi)


SPAN_SSE2 = bool(SPD_SPAN_SSE2)
