/*
 * test_flow_search.c -- finding a district by its first letters: the fold
 * (case, punctuation, the two Unicode spellings of Bangla letters), word
 * starts, aliases, both scripts, no match, and through the engine, too
 * many matches, a pick from a page of them, and the division the district
 * brings.  Runs on the shipped lists and messages (config/), so the
 * spellings tested are the ones callers get.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "flows/flow.h"
#include "flows/flow_model.h"

static char dir[64];
static struct flow_set *set;
static const struct flow_node *district;

static const char flow_text[] =
    "id = \"t\";\nlanguages = [ \"en\", \"bn\" ];\nstart = \"district\";\n"
    "nodes = (\n"
    "  { id = \"district\"; kind = \"menu\"; field = \"district\";\n"
    "    list = \"districts\"; filter = \"division\";\n"
    "    parent_field = \"division\"; list_via = \"division\";\n"
    "    label = { en = \"District\"; bn = \"জেলা\"; };\n"
    "    search = { en = \"District? First letters\"; bn = \"জেলা?\"; };\n"
    "    text = { en = \"District?\"; bn = \"জেলা?\"; }; next = \"bye\"; },\n"
    "  { id = \"division\"; kind = \"menu\"; field = \"division\";\n"
    "    list = \"divisions\"; label = { en = \"Division\"; bn = \"বিভাগ\"; "
    "};\n"
    "    text = { en = \"Division?\"; bn = \"বিভাগ?\"; }; next = "
    "\"district\"; },\n"
    "  { id = \"bye\"; kind = \"end\";\n"
    "    text = { en = \"Bye\"; bn = \"বিদায়\"; }; }\n"
    ");\n";

/* The codes flow_search() finds for q, comma-joined, in list order. */
static const char *
found(const char *q)
{
    static char buf[512];
    struct flow_choice ch[FLOW_CHOICES_MAX];
    size_t n = flow_search(set, district, q, 0, ch), len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                i ? "," : "", ch[i].value);
    return buf;
}

static void
t_fold(void **state)
{
    (void)state;
    char out[128];
    flow_search_fold("  Cox's  Bazar ", out, sizeof(out));
    assert_string_equal(out, "coxs bazar");
    flow_search_fold("UAE (Dubai)", out, sizeof(out));
    assert_string_equal(out, "uae dubai");
    /* ড় precomposed (U+09DC) folds to ড + nukta */
    char a[64], b[64];
    flow_search_fold("বগু\xe0\xa7\x9c\xe0\xa6\xbe", a, sizeof(a));
    flow_search_fold("বগু\xe0\xa6\xa1\xe0\xa6\xbc\xe0\xa6\xbe", b, sizeof(b));
    assert_string_equal(a, b);
    /* ো as one code point or as ে + া; a zero-width non-joiner dropped */
    flow_search_fold("\xe0\xa6\xa8\xe0\xa7\x8b", a, sizeof(a));
    flow_search_fold("\xe0\xa6\xa8\xe0\xa7\x87\xe2\x80\x8c\xe0\xa6\xbe", b,
                     sizeof(b));
    assert_string_equal(a, b);
}

static void
t_prefixes(void **state)
{
    (void)state;
    /* English, any case; Bangla */
    assert_string_equal(found("chatt"), "BD-10");
    assert_string_equal(found("CHATT"), "BD-10");
    assert_string_equal(found("Dhak"), "BD-13");
    assert_string_equal(found("চট্ট"), "BD-10");
    assert_string_equal(found("ঢাকা"), "BD-13");
    /* the start of a word inside the name, never the middle of one */
    assert_string_equal(found("nawab"), "BD-45");
    assert_string_equal(found("haka"), "");
    assert_string_equal(found("bazar"), "BD-11,BD-38");
    /* punctuation does not matter */
    assert_string_equal(found("coxs"), "BD-11");
    assert_string_equal(found("cox's b"), "BD-11");
    /* two matches, in list order */
    assert_string_equal(found("না"), "BD-40,BD-44");
}

static void
t_aliases(void **state)
{
    (void)state;
    assert_string_equal(found("Chittagong"), "BD-10");
    assert_string_equal(found("ctg"), "BD-10");
    assert_string_equal(found("comilla"), "BD-08");
    assert_string_equal(found("Cumilla"), "BD-08");
    assert_string_equal(found("চট্রগ্রাম"), "BD-10"); /* with র-ফলা */
    assert_string_equal(found("bogra"), "BD-03");
    assert_string_equal(found("jessore"), "BD-22");
    /* a keyboard's decomposed ড় finds বগুড়া */
    assert_string_equal(found("বগু\xe0\xa6\xa1\xe0\xa6\xbc"), "BD-03");
}

static void
t_no_match(void **state)
{
    (void)state;
    assert_string_equal(found("xyz"), "");
    assert_string_equal(found("দুবাই"), "");
    assert_string_equal(found(""), "");
    assert_string_equal(found("   "), "");
    assert_string_equal(found("'"), "");
}

/* Through the engine: letters, too many, a page of matches, a pick. */
static void
t_engine(void **state)
{
    (void)state;
    struct flow_state st;
    struct flow_out out;
    struct flow_ctx ctx = {.now = 1795343567};
    char rec[2048];
    memset(&st, 0, sizeof(st));
    assert_int_equal(flow_start(set, &st, "t", "bn", FLOW_CH_USSD, &ctx, &out),
                     0);
    assert_string_equal(out.text, "জেলা?\n০. তালিকা");
    /* one letter that more names start with than a Bangla page holds */
    assert_int_equal(flow_step(set, &st, "ন", strlen("ন"), &ctx, &out), 0);
    assert_string_equal(out.text, "অনেক মিলেছে, আরও অক্ষর লিখুন।\nজেলা?\n"
                                  "০. তালিকা");
    assert_int_equal(st.tries, 0); /* not a wrong answer */
    /* digits */
    assert_int_equal(flow_step(set, &st, "12", 2, &ctx, &out), 0);
    assert_non_null(strstr(out.text, "নম্বর নয়, অক্ষর লিখুন।"));
    /* nothing */
    assert_int_equal(flow_step(set, &st, "qq", 2, &ctx, &out), 0);
    assert_non_null(strstr(out.text, "এই অক্ষরে কোনো নাম নেই।"));
    assert_int_equal(st.tries, 0);
    /* a page of matches, in Bangla digits: Shariatpur, Sherpur */
    assert_int_equal(flow_step(set, &st, "শ", strlen("শ"), &ctx, &out), 0);
    assert_string_equal(out.text, "জেলা?\n১. শরীয়তপুর\n২. শেরপুর\n"
                                  "০. পেছনে");
    /* a number that is not on it, then the pick */
    assert_int_equal(flow_step(set, &st, "3", 1, &ctx, &out), 0);
    assert_int_equal(st.tries, 1);
    assert_int_equal(flow_step(set, &st, "2", 1, &ctx, &out), 0);
    assert_true(out.done);
    assert_string_equal(flow_state_get(&st, "district"), "BD-57");
    assert_string_equal(flow_state_get(&st, "division"), "H");
    assert_true(flow_record_json(set, &st, NULL, rec, sizeof(rec)) > 0);
    assert_non_null(strstr(rec, "\"division\":\"H\",\"district\":\"BD-57\""));
}

/* 0 on the letters goes to the division, then that division's list. */
static void
t_list_via(void **state)
{
    (void)state;
    struct flow_state st;
    struct flow_out out;
    struct flow_ctx ctx = {.now = 1795343567};
    memset(&st, 0, sizeof(st));
    flow_start(set, &st, "t", "en", FLOW_CH_USSD, &ctx, &out);
    flow_step(set, &st, "0", 1, &ctx, &out);
    assert_non_null(strstr(out.text, "Division?"));
    flow_step(set, &st, "8", 1, &ctx, &out); /* Mymensingh */
    assert_string_equal(out.text, "District?\n1. Jamalpur\n2. Mymensingh\n"
                                  "3. Netrakona\n4. Sherpur\n0. Back");
    /* back: the division again, then back to the letters */
    flow_step(set, &st, "0", 1, &ctx, &out);
    assert_non_null(strstr(out.text, "Division?"));
    flow_step(set, &st, "0", 1, &ctx, &out);
    assert_non_null(strstr(out.text, "First letters"));
    /* the state survives the codec at every screen */
    char enc[FLOW_STATE_MAX];
    flow_step(set, &st, "ja", 2, &ctx, &out);
    int n = flow_state_encode(&st, enc, sizeof(enc));
    assert_true(n > 0);
    struct flow_state back;
    char enc2[FLOW_STATE_MAX];
    assert_int_equal(flow_state_decode(&back, enc, (size_t)n), 0);
    assert_int_equal(flow_state_encode(&back, enc2, sizeof(enc2)), n);
    assert_string_equal(enc2, enc);
    assert_non_null(strstr(enc, "&q=ja"));
    assert_string_equal(back.query, "ja");
}

static int
setup(void **state)
{
    (void)state;
    char path[128];
    snprintf(dir, sizeof(dir), "/tmp/remigate-flowsearch.XXXXXX");
    if (mkdtemp(dir) == NULL) return -1;
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    FILE *fp = fopen(path, "w");
    if (fp == NULL) return -1;
    fputs(flow_text, fp);
    fclose(fp);
    struct flow_settings s;
    struct flow_diag d;
    flow_settings_default(&s);
    s.flows_dir = dir;
    s.lists_dir = "config/lists";
    s.messages_file = "config/messages.conf";
    s.entry_ussd = s.entry_sms = "t";
    flow_diag_init(&d);
    set = flow_set_load(&s, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s:%d: %s\n", d.items[i].file, d.items[i].line,
                d.items[i].msg);
    flow_diag_fini(&d);
    if (set == NULL) return -1;
    district = flow_node_find(flow_def_find(set, "t"), "district");
    return district == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char path[128];
    flow_set_free(set);
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_fold),    cmocka_unit_test(t_prefixes),
        cmocka_unit_test(t_aliases), cmocka_unit_test(t_no_match),
        cmocka_unit_test(t_engine),  cmocka_unit_test(t_list_via),
    };
    return cmocka_run_group_tests_name("flow_search", tests, setup, teardown);
}
