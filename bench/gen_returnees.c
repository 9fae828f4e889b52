/*
 * gen_returnees.c -- synthetic registrations for the local stack's demo
 * (`scripts/stack up --demo N`) and the console benchmarks (a million rows
 * over the 64 districts).
 *
 *   build/bench/gen_returnees -k KEY_FILE -l LISTS_DIR -n N [-s SEED]
 *                             [-p MSISDN_PREFIX] [-d DAYS] | psql "$PG_DSN"
 *
 * Writes one SQL script on stdout: in one transaction, COPY N submissions
 * (kind register, answers as the flows write them, no ID number in clear)
 * and N pending returnees spread evenly over the districts of
 * LISTS_DIR/districts.conf (each with its division), with codes drawn from
 * the other lists, a registration time in the last DAYS days (default 30),
 * and an NID encrypted and blind-indexed with KEY_FILE exactly as the store
 * does (so reveal and the duplicate panel work), and the name encrypted
 * in personal_enc with its keyed hash as the store does since migration
 * 007 (returnees.name NULL, "***" in the answers); about one record in 25
 * shares its NID with an earlier one (mostly of another district).
 * Then each submission is linked to its returnee.  Phone numbers are
 * MSISDN_PREFIX (default 8801900, 7 digits) followed by a running number
 * from the seed, so two runs with different seeds do not collide; a number
 * already registered is skipped (ON CONFLICT through a staging table).
 * Deterministic for a seed, apart from the encryption nonces.
 *
 * -b (bulk, for a database nobody else writes to meanwhile): the indexes
 * of returnees and submissions that back no constraint and are not
 * unique are dropped for the load and made again after it, in the same
 * transaction (pg_get_indexdef of each, so they come back exactly as the
 * migrations made them): a million rows inserted into a dozen random-
 * order indexes through a small buffer cache was most of the 2,924 s a
 * million rows took (bench/RESULTS.md); each index built once by a sort
 * is far cheaper.  015's dashboard counts are made once after the load
 * (the insert trigger off meanwhile, then remigate_stats_rebuild(), as
 * bench/stats-gen does: the trigger writes some hundred summary rows per
 * returnee, and was still running after 25 minutes for a million); 023's
 * duplicate flags rebuild themselves above 10,000 IDs.
 */
#include <libconfig.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h"

#define GEN_ITEMS_MAX 128

struct gen_list {
    size_t n;
    char code[GEN_ITEMS_MAX][32];
    char parent[GEN_ITEMS_MAX][32];
};

static uint64_t gen_state;

static uint64_t
gen_rand(void)
{
    /* splitmix64: small, good enough for test data, reproducible */
    uint64_t z = (gen_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t
gen_pick(size_t n)
{
    return (size_t)(gen_rand() % n);
}

static int
gen_list_load(const char *dir, const char *name, struct gen_list *l)
{
    char path[512];
    config_t cf;
    config_setting_t *items;

    snprintf(path, sizeof(path), "%s/%s.conf", dir, name);
    config_init(&cf);
    if (!config_read_file(&cf, path)) {
        fprintf(stderr, "gen_returnees: %s:%d: %s\n", path,
                config_error_line(&cf), config_error_text(&cf));
        config_destroy(&cf);
        return -1;
    }
    items = config_lookup(&cf, "items");
    l->n = 0;
    for (int i = 0; items && i < config_setting_length(items); i++) {
        config_setting_t *it = config_setting_get_elem(items, (unsigned)i);
        const char *code = NULL, *parent = "";
        if (!config_setting_lookup_string(it, "code", &code)) continue;
        config_setting_lookup_string(it, "parent", &parent);
        if (l->n == GEN_ITEMS_MAX) break;
        snprintf(l->code[l->n], sizeof(l->code[0]), "%s", code);
        snprintf(l->parent[l->n], sizeof(l->parent[0]), "%s", parent);
        l->n++;
    }
    config_destroy(&cf);
    if (l->n == 0) {
        fprintf(stderr, "gen_returnees: %s: no items\n", path);
        return -1;
    }
    return 0;
}

static void
gen_hex(FILE *out, const unsigned char *b, size_t n)
{
    fputs("\\\\x", out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", b[i]);
}

static void
gen_ref(char ref[11])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t bits = gen_rand();
    for (int i = 9; i >= 0; i--) {
        ref[i] = b32[bits & 31];
        bits >>= 5;
    }
    ref[10] = '\0';
}

static const char *const gen_first_m[] = {
    "Abdul", "Mohammad", "Rafiq", "Jamal", "Habib",   "Shahid",  "Kamal",
    "Nurul", "Anwar",    "Sohel", "Babul", "Mizanur", "Alamgir", "Rashed"};
static const char *const gen_first_f[] = {
    "Ayesha",   "Fatema", "Nasrin", "Rehana",  "Shirin", "Salma",
    "Jahanara", "Morium", "Rokeya", "Shahnaz", "Parvin", "Hosneara"};
static const char *const gen_last[] = {
    "Rahman", "Hossain", "Islam",  "Uddin",     "Ahmed",  "Akter",  "Begum",
    "Khatun", "Miah",    "Sarkar", "Chowdhury", "Mondal", "Sheikh", "Talukder"};

#define GEN_N(a) (sizeof(a) / sizeof(a[0]))

static int
gen_usage(void)
{
    fprintf(stderr, "usage: gen_returnees -k KEY_FILE -l LISTS_DIR -n N "
                    "[-s SEED] [-p MSISDN_PREFIX] [-d DAYS] [-b]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *key_file = NULL, *lists = NULL, *prefix = "8801900";
    long n = -1, days = 30;
    unsigned long long seed = 1;
    struct gen_list districts, countries, skills, education, reasons, needs;
    struct store_keys keys;
    char err[256];
    time_t now = time(NULL);
    char(*nids)[16];
    int opt, bulk = 0;

    while ((opt = getopt(argc, argv, "k:l:n:s:p:d:b")) != -1) {
        switch (opt) {
        case 'b':
            bulk = 1;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'l':
            lists = optarg;
            break;
        case 'n':
            n = strtol(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'd':
            days = strtol(optarg, NULL, 10);
            break;
        default:
            return gen_usage();
        }
    }
    if (key_file == NULL || lists == NULL || n < 0 || n > 100000000 ||
        days < 1 || strlen(prefix) < 5 || strlen(prefix) > 8 ||
        strspn(prefix, "0123456789") != strlen(prefix))
        return gen_usage();
    if (sodium_init() < 0) return 1;
    if (store_keys_load(key_file, &keys, err, sizeof(err)) != 0) {
        fprintf(stderr, "gen_returnees: %s\n", err);
        return 1;
    }
    if (gen_list_load(lists, "districts", &districts) ||
        gen_list_load(lists, "countries", &countries) ||
        gen_list_load(lists, "skills", &skills) ||
        gen_list_load(lists, "education", &education) ||
        gen_list_load(lists, "reasons", &reasons) ||
        gen_list_load(lists, "needs", &needs))
        return 1;
    nids = calloc((size_t)n + 1, sizeof(*nids));
    if (nids == NULL) return 1;
    gen_state = seed;

    printf(
        "BEGIN;\n"
        "CREATE TEMP TABLE gen_r (LIKE returnees INCLUDING DEFAULTS)"
        " ON COMMIT DROP;\n"
        "COPY gen_r (msisdn, name, sex, birth_year, division, district,"
        " country, years_abroad, return_year, reason, education, skills,"
        " need, lang, channel, status, ref, nid_enc, nid_hash,"
        " personal_enc, personal_hash, created_at, updated_at) FROM stdin;\n");
    for (long i = 0; i < n; i++) {
        size_t d = (size_t)i % districts.n; /* even over the districts */
        int female = gen_pick(4) == 0;
        const char *first = female ? gen_first_f[gen_pick(GEN_N(gen_first_f))]
                                   : gen_first_m[gen_pick(GEN_N(gen_first_m))];
        const char *last = gen_last[gen_pick(GEN_N(gen_last))];
        int birth = 1966 + (int)gen_pick(40);
        int ret = 2015 + (int)gen_pick(11);
        const char *lang = gen_pick(3) ? "bn" : "en";
        const char *channel = gen_pick(5) ? "ussd" : "sms";
        time_t at = now - (time_t)gen_pick((size_t)days * 86400);
        char msisdn[48], ref[11], norm[16], ts[32], pers[128];
        unsigned char hash[STORE_HASH_BYTES], enc[STORE_ENC_MAX];
        unsigned char phash[STORE_HASH_BYTES], penc[128 + STORE_ENC_MAX];
        int enclen, penclen;
        struct tm tm;

        {
            /* the prefix, then its running number in the digits left */
            unsigned long long mod = 1;
            int w = 13 - (int)strlen(prefix);
            for (int k = 0; k < w; k++)
                mod *= 10;
            snprintf(msisdn, sizeof(msisdn), "%s%0*llu", prefix, w & 15,
                     (seed * 100003ull + (unsigned long long)i) % mod);
        }
        gen_ref(ref);
        /* about 1 in 25 reuses the NID of an earlier record */
        if (i > 0 && gen_pick(25) == 0)
            snprintf(norm, sizeof(norm), "%s", nids[gen_pick((size_t)i)]);
        else
            snprintf(norm, sizeof(norm), "%010llu",
                     (unsigned long long)(gen_rand() % 10000000000ull));
        snprintf(nids[i], sizeof(nids[i]), "%s", norm);
        store_id_hash_keys(&keys, "nid", norm, hash);
        enclen = store_id_encrypt(&keys, norm, msisdn, enc);
        if (enclen < 0) return 1;
        snprintf(pers, sizeof(pers), "{\"name\":\"%s %s\"}", first, last);
        store_id_hash_keys(&keys, "personal", pers, phash);
        penclen =
            store_personal_encrypt(&keys, pers, strlen(pers), msisdn, penc);
        if (penclen < 0) return 1;
        gmtime_r(&at, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S+00", &tm);

        printf("%s\t\\N\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t{%s,%s}\t%s\t%s"
               "\t%s\tpending\t%s\t",
               msisdn, female ? "f" : "m", birth, districts.parent[d],
               districts.code[d], countries.code[gen_pick(countries.n)],
               1 + (int)gen_pick(15), ret, reasons.code[gen_pick(reasons.n)],
               education.code[gen_pick(education.n)],
               skills.code[gen_pick(skills.n)], skills.code[gen_pick(skills.n)],
               needs.code[gen_pick(needs.n)], lang, channel, ref);
        gen_hex(stdout, enc, (size_t)enclen);
        putchar('\t');
        gen_hex(stdout, hash, sizeof(hash));
        putchar('\t');
        gen_hex(stdout, penc, (size_t)penclen);
        putchar('\t');
        gen_hex(stdout, phash, sizeof(phash));
        printf("\t%s\t%s\n", ts, ts);
    }
    printf(
        "\\.\n"
        "UPDATE gen_r SET skills = ARRAY(SELECT DISTINCT unnest(skills));\n");
    if (bulk)
        printf("CREATE TEMP TABLE gen_idx ON COMMIT DROP AS"
               " SELECT c.relname::text AS name,"
               " pg_get_indexdef(i.indexrelid) AS def"
               " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
               " WHERE i.indrelid IN ('returnees'::regclass,"
               " 'submissions'::regclass) AND NOT i.indisunique"
               " AND NOT EXISTS (SELECT 1 FROM pg_constraint k"
               " WHERE k.conindid = i.indexrelid);\n"
               "DO $gen$ DECLARE x record; BEGIN"
               " FOR x IN SELECT name FROM gen_idx LOOP"
               " EXECUTE format('DROP INDEX %%I', x.name); END LOOP;"
               " END $gen$;\n"
               "ALTER TABLE returnees DISABLE TRIGGER returnees_stats_ins;\n");
    printf("WITH r AS (INSERT INTO returnees (msisdn, name, sex, birth_year,"
           " division, district, country, years_abroad, return_year, reason,"
           " education, skills, need, lang, channel, status, ref, nid_enc,"
           " nid_hash, personal_enc, personal_hash, created_at, updated_at,"
           " status_at)"
           " SELECT msisdn, name, sex, birth_year, division, district,"
           " country, years_abroad, return_year, reason, education, skills,"
           " need, lang, channel, status, ref, nid_enc, nid_hash,"
           " personal_enc, personal_hash, created_at, updated_at, created_at"
           " FROM gen_r ON CONFLICT DO NOTHING"
           " RETURNING id, msisdn, ref, lang, channel, created_at, name, sex,"
           " birth_year, division, district, country, years_abroad,"
           " return_year, reason, education, skills, need)"
           " INSERT INTO submissions (idempotency_key, kind, ref, msisdn, lang,"
           " channel, answers, started_at, created_at, returnee_id)"
           " SELECT 'demo:' || ref, 'register', ref, msisdn, lang, channel,"
           " jsonb_build_object('name', '***', 'sex', sex, 'birth_year',"
           " birth_year, 'division', division, 'district', district,"
           " 'country', country, 'years_abroad', years_abroad,"
           " 'return_year', return_year, 'reason', reason, 'education',"
           " education, 'skills', to_jsonb(skills), 'need', need,"
           " 'id_type', 'nid'), created_at, created_at, id FROM r;\n");
    if (bulk)
        printf("ALTER TABLE returnees ENABLE TRIGGER returnees_stats_ins;\n"
               "SET LOCAL client_min_messages = warning;\n"
               "SELECT remigate_stats_rebuild();\n"
               "SET LOCAL maintenance_work_mem = '256MB';\n"
               "DO $gen$ DECLARE x record; BEGIN"
               " FOR x IN SELECT def FROM gen_idx LOOP"
               " EXECUTE x.def; END LOOP; END $gen$;\n");
    printf("COMMIT;\n");
    store_keys_wipe(&keys);
    free(nids);
    return fflush(stdout) == 0 ? 0 : 1;
}
