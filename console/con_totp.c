/*
 * con_totp.c -- the admins' second factor: TOTP (RFC 6238: HMAC-SHA1, 6
 * digits, 30-second steps) through liboath.
 *
 * Enrolment is two calls.  POST /api/totp/enrol makes a 160-bit secret,
 * stores it sealed (store_secret_seal, bound to "totp:<officer id>", so a
 * sealed secret copied to another row does not open) with totp_enabled
 * still false, and answers the secret once, in base32 and as an
 * otpauth:// URI for a QR code.  POST /api/totp/confirm with a code from
 * the app turns it on.  From then on every login of that admin needs a
 * code; a code is good for one step either side of now, and only once:
 * the step of the last accepted code is kept (totp_last_step) and a code
 * of that step or an older one is refused.  An admin who lost the phone
 * is reset by another admin (POST /api/officers/{}/totp-reset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <liboath/oath.h>
#include <sodium.h>

#include "console/con_int.h"

#define TOTP_SECRET_BYTES 20
#define TOTP_STEP         30
#define TOTP_WINDOW       1
#define TOTP_SEALED_MAX   256

int
con_totp_init(void)
{
    static int done;

    if (done) return 0;
    if (oath_init() != OATH_OK) return -1;
    done = 1;
    return 0;
}

/* Open the sealed secret of officer id (hex of totp_enc) into out.
 * Returns its length or -1. */
static int
totp_open(struct con *con, const char *id, const char *enc_hex, char *out,
          size_t cap)
{
    char sealed[TOTP_SEALED_MAX], ad[48];
    size_t n;
    int len;

    if (con->crypto == NULL || enc_hex == NULL || enc_hex[0] == '\0') return -1;
    if (sodium_hex2bin((unsigned char *)sealed, sizeof(sealed) - 1, enc_hex,
                       strlen(enc_hex), NULL, &n, NULL) != 0)
        return -1;
    sealed[n] = '\0';
    snprintf(ad, sizeof(ad), "totp:%s", id);
    len = store_secret_open(con->crypto, ad, sealed, n, out, cap);
    return len == TOTP_SECRET_BYTES ? len : -1;
}

const char *
con_totp_check(struct con *con, const char *id, const char *enc_hex,
               long long last, const char *code, long long *step)
{
    char secret[TOTP_SECRET_BYTES + 1];
    uint64_t counter = 0;
    int pos = 0, len, rc;

    *step = -1;
    if (code == NULL || code[0] == '\0') return "otp_missing";
    if (strlen(code) != 6 || strspn(code, "0123456789") != 6) return "bad_otp";
    if ((len = totp_open(con, id, enc_hex, secret, sizeof(secret))) < 0)
        return "bad_otp";
    rc = oath_totp_validate3(secret, (size_t)len, time(NULL), TOTP_STEP, 0,
                             TOTP_WINDOW, &pos, &counter, code);
    sodium_memzero(secret, sizeof(secret));
    if (rc < 0) return "bad_otp";
    if (last >= 0 && (long long)counter <= last) return "otp_reused";
    *step = (long long)counter;
    return NULL;
}

/* ------------------------------------------------------------------------
 * POST /api/totp/enrol
 */

struct totp_enrol {
    char secret_b32[64];
    char uri[1024];
    char sealed_hex[TOTP_SEALED_MAX * 2 + 1];
};

/* The request's memory goes with the reply: e is wiped before it. */
static void
totp_on_enrolled(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct totp_enrol *e = call->data;
    json_t *o;

    if (status != 0) {
        sodium_memzero(e, sizeof(*e));
        con_reply_store_error(call, status, res);
    } else if (store_tx_ntuples(res, 0) != 1) {
        sodium_memzero(e, sizeof(*e));
        con_reply_error(call, 409, "totp_enrolled",
                        "TOTP is on already; another admin can reset it");
    } else {
        GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api totp enrol officer=%lld",
                call->who.id);
        o = json_pack("{s:s,s:s,s:i,s:i}", "secret", e->secret_b32, "uri",
                      e->uri, "digits", 6, "period", TOTP_STEP);
        sodium_memzero(e, sizeof(*e));
        con_reply_json(call, 200, o);
    }
}

static void
con_totp_enrol(struct con_call *call)
{
    static const char sql[] =
        "UPDATE officers SET totp_enc = decode($2, 'hex'),"
        " totp_last_step = NULL, updated_at = now()"
        " WHERE id = $1::bigint AND NOT totp_enabled RETURNING 1";
    struct totp_enrol *e = gw_req_alloc(call->req, sizeof(*e));
    char secret[TOTP_SECRET_BYTES], sealed[TOTP_SEALED_MAX], ad[48];
    char issuer[196], user[100], *b32 = NULL;
    size_t b32len = 0;
    struct store_tx tx;
    int n;

    if (e == NULL) {
        con_reply_error(call, 503, "unavailable", "out of memory");
        return;
    }
    if (call->con->crypto == NULL) {
        con_reply_error(call, 503, "no_key",
                        "TOTP needs crypto.key_file in the configuration");
        return;
    }
    if (call->who.totp_enabled) {
        con_reply_error(call, 409, "totp_enrolled",
                        "TOTP is on already; another admin can reset it");
        return;
    }
    randombytes_buf(secret, sizeof(secret));
    snprintf(ad, sizeof(ad), "totp:%s", call->who.id_text);
    n = store_secret_seal(call->con->crypto, ad, secret, sizeof(secret), sealed,
                          sizeof(sealed));
    if (n < 0 ||
        oath_base32_encode(secret, sizeof(secret), &b32, &b32len) != OATH_OK ||
        b32len >= sizeof(e->secret_b32)) {
        sodium_memzero(secret, sizeof(secret));
        free(b32);
        con_reply_error(call, 500, "internal", "cannot make a secret");
        return;
    }
    sodium_memzero(secret, sizeof(secret));
    memcpy(e->secret_b32, b32, b32len);
    e->secret_b32[b32len] = '\0';
    sodium_memzero(b32, b32len);
    free(b32);
    sodium_bin2hex(e->sealed_hex, sizeof(e->sealed_hex),
                   (const unsigned char *)sealed, (size_t)n);
    gw_pct_encode((const unsigned char *)call->con->cfg->con_totp_issuer,
                  strlen(call->con->cfg->con_totp_issuer), issuer,
                  sizeof(issuer));
    gw_pct_encode((const unsigned char *)call->who.username,
                  strlen(call->who.username), user, sizeof(user));
    snprintf(e->uri, sizeof(e->uri),
             "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1"
             "&digits=6&period=%d",
             issuer, user, e->secret_b32, issuer, TOTP_STEP);
    call->data = e;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] =
        (struct store_tx_stmt){sql, 2, {call->who.id_text, e->sealed_hex}};
    CON_AZ(con_audit_add(call, &tx, NULL, "totp.enrol", NULL, "ok", NULL));
    con_tx_or_503(call, &tx, totp_on_enrolled);
}

/* ------------------------------------------------------------------------
 * POST /api/totp/confirm {"otp"}
 */

struct totp_confirm {
    char otp[8];
    char step[24];
    const char *why;
};

static void
totp_on_confirmed(int status, const struct store_tx_result *res, void *arg)
{
    struct con_call *call = arg;
    struct totp_confirm *c = call->data;

    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    if (c->why != NULL) {
        con_reply_error(call, 400, "bad_otp",
                        "that code is not the right one; try the next");
        return;
    }
    if (store_tx_ntuples(res, 0) != 1) {
        con_reply_error(call, 409, "totp_enrolled", "TOTP is on already");
        return;
    }
    GW_RLOG(GW_LEVEL_INFO, call->req, 0, "api totp on officer=%lld",
            call->who.id);
    con_reply_json(call, 200, json_pack("{s:b}", "totp", 1));
}

static void
totp_on_secret(int status, const struct store_tx_result *res, void *arg)
{
    static const char sql[] =
        "UPDATE officers SET totp_enabled = true, totp_last_step ="
        " $2::bigint, updated_at = now() WHERE id = $1::bigint"
        " AND NOT totp_enabled AND totp_enc IS NOT NULL RETURNING 1";
    struct con_call *call = arg;
    struct totp_confirm *c = call->data;
    const char *enabled, *enc;
    long long step;
    struct store_tx tx;

    if (status != 0) {
        con_reply_store_error(call, status, res);
        return;
    }
    enabled = store_tx_value(res, 0, 0, 0);
    enc = store_tx_value(res, 0, 0, 1);
    if (enabled != NULL && enabled[0] == 't') {
        con_reply_error(call, 409, "totp_enrolled", "TOTP is on already");
        return;
    }
    if (enc == NULL || enc[0] == '\0') {
        con_reply_error(call, 409, "totp_not_enrolled",
                        "start with POST /api/totp/enrol");
        return;
    }
    c->why =
        con_totp_check(call->con, call->who.id_text, enc, -1, c->otp, &step);
    con_tx_init(call, &tx);
    if (c->why == NULL) {
        snprintf(c->step, sizeof(c->step), "%lld", step);
        tx.stmt[tx.n++] =
            (struct store_tx_stmt){sql, 2, {call->who.id_text, c->step}};
    }
    CON_AZ(con_audit_add(call, &tx, NULL, "totp.confirm", NULL,
                         c->why ? "failed" : "ok", NULL));
    con_tx_or_503(call, &tx, totp_on_confirmed);
}

static void
con_totp_confirm(struct con_call *call)
{
    static const char sql[] =
        "SELECT totp_enabled, encode(totp_enc, 'hex') FROM officers"
        " WHERE id = $1::bigint";
    struct totp_confirm *c = gw_req_alloc(call->req, sizeof(*c));
    json_t *body = con_body_or_400(call);
    const char *otp;
    struct store_tx tx;

    if (body == NULL) return;
    otp = json_string_value(json_object_get(body, "otp"));
    if (c == NULL || otp == NULL || strlen(otp) != 6 ||
        strspn(otp, "0123456789") != 6) {
        json_decref(body);
        con_reply_error(call, 400, "bad_request", "give otp: six digits");
        return;
    }
    memcpy(c->otp, otp, 7);
    json_decref(body);
    call->data = c;
    con_tx_init(call, &tx);
    tx.stmt[tx.n++] = (struct store_tx_stmt){sql, 1, {call->who.id_text}};
    con_tx_or_503(call, &tx, totp_on_secret);
}

const struct con_route con_totp_routes[] = {
    {GW_METHOD_POST, "/api/totp/enrol", CON_ROLE_ADMIN | CON_PRE_MFA, 1,
     con_totp_enrol},
    {GW_METHOD_POST, "/api/totp/confirm", CON_ROLE_ADMIN | CON_PRE_MFA, 1,
     con_totp_confirm},
    {0, NULL, 0, 0, NULL},
};
