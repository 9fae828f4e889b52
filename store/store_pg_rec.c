/*
 * store_pg_rec.c -- a finished flow's record (flow_record_json() output)
 * read into a request of the records store: every field checked against
 * the flows' table of each action's fields (flow_afields), the ID numbers
 * normalised, hashed and encrypted, the other personal answers encrypted
 * and hashed, and the answers kept redacted.  Nothing here touches the
 * database or the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "flows/flow.h"
#include "store/store_pg_int.h"

/* ------------------------------------------------------------------------
 * Record parsing
 */

static int
store_json_str(json_t *obj, const char *name, char *out, size_t cap,
               int required)
{
    json_t *v = json_object_get(obj, name);
    const char *s;

    if (v == NULL || json_is_null(v)) {
        out[0] = '\0';
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) return -1;
    s = json_string_value(v);
    if (strlen(s) >= cap) return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int
store_str_chars(const char *s, const char *allowed, size_t min, size_t max)
{
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, allowed) == n;
}

/* An answer of the type its action declares (flows/flow.h,
 * FLOW_ACTION_FIELDS); null is no answer. */
static int
store_ans_typed(json_t *v, enum flow_ftype t)
{
    json_t *it;
    size_t i;

    if (json_is_null(v)) return 1;
    switch (t) {
    case FLOW_FT_TEXT:
        return json_is_string(v) && strlen(json_string_value(v)) <= 300;
    case FLOW_FT_CODE:
        return json_is_string(v) && strlen(json_string_value(v)) >= 1 &&
               strlen(json_string_value(v)) <= 64;
    case FLOW_FT_INT:
        return json_is_integer(v);
    case FLOW_FT_CODES:
        if (!json_is_array(v) || json_array_size(v) > 64) return 0;
        json_array_foreach(v, i, it)
        {
            if (!json_is_string(it) || strlen(json_string_value(it)) == 0 ||
                strlen(json_string_value(it)) > 64)
                return 0;
        }
        return 1;
    case FLOW_FT_NID:
    case FLOW_FT_PASSPORT:
    case FLOW_FT_ID: /* made nid or passport by store_id_number() first */
        return json_is_string(v);
    case FLOW_FT__N:
    default:
        STORE_WRONG("field type");
    }
}

/* An optional integer answer within [lo, hi]. */
static int
store_ans_int(json_t *a, const char *name, long lo, long hi)
{
    json_t *v = json_object_get(a, name);
    return v == NULL || json_is_null(v) ||
           (json_is_integer(v) && json_integer_value(v) >= lo &&
            json_integer_value(v) <= hi);
}

/* Encrypt and hash one ID answer (field a, of an ID type) into the
 * columns of its type and replace its plaintext in the answers by "***".
 * 0, or STORE_EINVAL. */
static int
store_req_id(struct store *s, struct store_req *r, json_t *ans,
             const struct flow_afield *a)
{
    json_t *v = json_object_get(ans, a->field);
    const char *type = flow_ftype_name(a->type);
    int pp = a->type == FLOW_FT_PASSPORT;
    unsigned char *enc = pp ? r->pp_enc : r->nid_enc;
    unsigned char *hash = pp ? r->pp_hash : r->nid_hash;
    int *enclen = pp ? &r->pp_enc_len : &r->nid_enc_len;
    char norm[STORE_ID_MAX];
    int rc = STORE_EINVAL;

    if (v == NULL || json_is_null(v)) return 0;
    if (*enclen > 0 || /* two fields of one ID type */
        store_id_normalise(type, json_string_value(v), norm, sizeof(norm)) < 0)
        goto done;
    *enclen = store_id_encrypt(s->keys, norm, r->msisdn, enc);
    if (*enclen < 0) {
        *enclen = 0;
        goto done;
    }
    store_id_hash_keys(s->keys, type, norm, hash);
    rc = json_object_set_new(ans, a->field, json_string("***")) == 0
             ? 0
             : STORE_ENOMEM;
done:
    sodium_memzero(norm, sizeof(norm));
    return rc;
}

/* One answer "id_number" (an NID or a passport number, flow validator
 * "id") becomes "nid" or "passport": with a letter in it a passport
 * number.  0, or -1 when it is not a string or the record has both. */
static int
store_id_number(json_t *ans)
{
    json_t *v = json_object_get(ans, "id_number");
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_object_get(ans, "nid") != NULL ||
        json_object_get(ans, "passport") != NULL)
        return -1;
    const char *s = json_string_value(v);
    int letter = 0;
    for (; *s; s++)
        letter |= (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
    if (json_object_set(ans, letter ? "passport" : "nid", v) != 0) return -1;
    return json_object_del(ans, "id_number");
}

/* Every personal answer of action that is not an ID number goes into one
 * encrypted JSON object (returnees.personal_enc, bound to the msisdn) and
 * is replaced by "***" in the answers kept in clear.  0, STORE_ENOMEM or
 * STORE_ECRYPTO. */
static int
store_req_personal(struct store *s, struct store_req *r, json_t *ans,
                   const char *action)
{
    json_t *pers = json_object();
    char *text = NULL;
    int rc = STORE_ENOMEM;

    if (pers == NULL) return STORE_ENOMEM;
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++) {
        json_t *v;
        if (!a->personal || flow_ftype_is_id(a->type) ||
            strcmp(a->action, action) != 0 ||
            (v = json_object_get(ans, a->field)) == NULL || json_is_null(v))
            continue;
        if (json_object_set(pers, a->field, v) != 0 ||
            json_object_set_new(ans, a->field, json_string("***")) != 0)
            goto done;
    }
    rc = 0;
    if (json_object_size(pers) == 0) goto done;
    text = json_dumps(pers, JSON_COMPACT);
    if (text == NULL) {
        rc = STORE_ENOMEM;
        goto done;
    }
    /* the keyed hash tells a changed name from the same one (a verified
     * record stays verified) without decrypting */
    store_id_hash_keys(s->keys, "personal", text, r->pers_hash);
    r->pers_enc = malloc(strlen(text) + STORE_ENC_OVERHEAD);
    r->pers_enc_len = r->pers_enc
                          ? store_personal_encrypt(s->keys, text, strlen(text),
                                                   r->msisdn, r->pers_enc)
                          : -1;
    if (r->pers_enc_len < 0) {
        r->pers_enc_len = 0;
        rc = r->pers_enc ? STORE_ECRYPTO : STORE_ENOMEM;
    }
done:
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    json_decref(pers);
    return rc;
}

/* Fill r from a flow record.  0 or STORE_EINVAL / STORE_ENOMEM.  The
 * answers are held to the action's declared fields (flows/flow.h): an
 * answer the action does not take, or of another type, makes the record
 * invalid; the personal ones are encrypted by their declaration, whatever
 * the flow called its field. */
int
store_req_parse(struct store *s, struct store_req *r, const char *json,
                size_t len)
{
    static const char hexalnum[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-";
    static const char digits[] = "0123456789";
    char action[40], sex[4];
    const char *k;
    json_error_t jerr;
    json_t *root, *ans, *v;
    int rc = STORE_EINVAL;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) goto done;
    if (store_json_str(root, "action", action, sizeof(action), 1) ||
        store_json_str(root, "flow", r->flow, sizeof(r->flow), 1) ||
        store_json_str(root, "key", r->key, sizeof(r->key), 1) ||
        store_json_str(root, "ref", r->ref, sizeof(r->ref), 1) ||
        store_json_str(root, "msisdn", r->msisdn, sizeof(r->msisdn), 1) ||
        store_json_str(root, "channel", r->channel, sizeof(r->channel), 1) ||
        store_json_str(root, "lang", r->lang, sizeof(r->lang), 0))
        goto done;
    if (strcmp(action, "submit_registration") == 0)
        r->kind = STORE_REQ_REGISTER;
    else if (strcmp(action, "update_skills") == 0)
        r->kind = STORE_REQ_SKILLS;
    else if (strcmp(action, "submit_part") == 0)
        r->kind = STORE_REQ_PART;
    else
        goto done;
    if (!store_str_chars(r->key, hexalnum, 16, 64) ||
        !store_str_chars(r->ref, hexalnum, 4, 16) ||
        !store_str_chars(r->msisdn, digits, 8, 15) ||
        !store_str_chars(r->flow, hexalnum, 1, 31) ||
        (strcmp(r->channel, "ussd") != 0 && strcmp(r->channel, "sms") != 0))
        goto done;
    v = json_object_get(root, "started");
    if (v != NULL && json_is_integer(v) && json_integer_value(v) > 0)
        snprintf(r->started, sizeof(r->started), "%lld",
                 (long long)json_integer_value(v));
    else if (v != NULL && !json_is_null(v))
        goto done;
    ans = json_object_get(root, "answers");
    if (ans == NULL || !json_is_object(ans)) goto done;
    if (store_id_number(ans) != 0) goto done;
    json_object_foreach(ans, k, v)
    {
        const struct flow_afield *a = flow_afield_find(action, k);
        if (a == NULL || !store_ans_typed(v, a->type)) goto done;
    }
    if (r->kind == STORE_REQ_REGISTER || r->kind == STORE_REQ_PART) {
        if (store_json_str(ans, "sex", sex, sizeof(sex), 0) ||
            (sex[0] && strcmp(sex, "m") && strcmp(sex, "f") &&
             strcmp(sex, "x")))
            goto done;
        v = json_object_get(ans, "country");
        if (v && !json_is_null(v) &&
            !store_str_chars(json_string_value(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                             2, 2))
            goto done;
        if (!store_ans_int(ans, "birth_year", 1900, 2100) ||
            !store_ans_int(ans, "return_year", 1900, 2100) ||
            !store_ans_int(ans, "years_abroad", 0, 100))
            goto done;
    } else if ((v = json_object_get(ans, "skills")) == NULL ||
               json_is_null(v)) {
        goto done;
    }
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++)
        if (a->personal && flow_ftype_is_id(a->type) &&
            strcmp(a->action, action) == 0 &&
            (rc = store_req_id(s, r, ans, a)) != 0)
            goto done;
    if ((rc = store_req_personal(s, r, ans, action)) != 0) goto done;
    r->answers = json_dumps(ans, JSON_COMPACT);
    rc = r->answers ? 0 : STORE_ENOMEM;
done:
    json_decref(root);
    return rc;
}
