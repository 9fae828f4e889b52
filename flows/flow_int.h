/*
 * flow_int.h -- private to flows/: helpers one file of the module provides
 * and another uses.  Not part of the public interface in flow.h.  Each file
 * keeps its declarations in its own block below.
 */
#ifndef FLOW_INT_H
#define FLOW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "flows/flow.h"

/* ------------------------------------------------------------------------
 * flow_text.c: UTF-8 and the GSM 03.38 alphabet
 */

/* Decode one code point of s[0..len) at *i into *cp and advance *i past it.
 * Strict: overlong forms, surrogates (U+D800..U+DFFF), values above
 * U+10FFFF, stray continuation bytes and sequences cut short by len are
 * invalid.  Returns 0, or -1 (and leaves *i and *cp alone) when the bytes at
 * *i are not a valid sequence or *i >= len. */
int flow_utf8_next(const char *s, size_t len, size_t *i, uint32_t *cp);

/* Units s[0..len) takes when sent in enc.  FLOW_ENC_GSM7: septets, two for a
 * character of the extension table, one for anything outside GSM 03.38
 * (decide the encoding with flow_text_measure() first).  FLOW_ENC_UCS2:
 * UTF-16 code units, two for a character above U+FFFF.  Each byte of
 * invalid UTF-8 counts one. */
unsigned flow_text_units(const char *s, size_t len, enum flow_enc enc);

/* One pass over s[0..len) (s may be NULL when len is 0): its size in
 * septets and in UTF-16 code units, counted as flow_text_units() does, and
 * 1 if every character is in GSM 03.38 (what flow_text_measure() decides
 * the encoding by), else 0. */
int flow_text_scan(const char *s, size_t len, unsigned *septets,
                   unsigned *ucs2);

/* Where cp is in GSM 03.38: 1 in the default alphabet, 2 in the extension
 * table (sent as escape + character), 0 not at all. */
int flow_gsm7_char(uint32_t cp);

/* Show the ASCII digits of in[0..len) in another script: digits is the
 * message "digits" of a language, its ten digits 0..9 in order (UTF-8).
 * A run of digits that touches an ASCII letter, '*' or '#' stays as it is
 * (a passport number like A01234567, a reference, a code to dial like
 * *247#).  Writes a NUL-terminated result into out and returns its
 * length; when digits is NULL or not ten characters, or out is too small,
 * in is copied unchanged (cut to cap).  in and out must not overlap. */
size_t flow_digits_apply(const char *digits, const char *in, size_t len,
                         char *out, size_t cap);

/* ---- end of flow_text.c ---- */

#endif
