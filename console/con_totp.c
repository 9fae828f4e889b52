/*
 * con_totp.c -- the admins' second factor, TOTP (RFC 6238).
 */
#include <stddef.h>

#include "console/con_int.h"

const char *
con_totp_check(struct con *con, const char *enc_hex, long long last,
               const char *code, long long *step)
{
    (void)con;
    (void)enc_hex;
    (void)last;
    *step = -1;
    return code == NULL ? "otp_missing" : "bad_otp";
}
