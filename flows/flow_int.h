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

/* ---- end of flow_text.c ---- */

#endif
