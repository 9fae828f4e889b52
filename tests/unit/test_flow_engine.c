/*
 * test_flow_engine.c -- the pure engine against the fixture flows in
 * tests/unit/fixtures: transitions, navigation, paging, retries, confirm and
 * edit, resume, the record, and the state codec on every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flows/flow.h"

#define FIX "tests/unit/fixtures"
#define NOW 1795343567 /* 2026-11-22 */

static struct flow_set *set;

static int
setup(void **state)
{
    (void)state;
    struct flow_settings s;
    struct flow_diag d;
    flow_settings_default(&s);
    s.flows_dir = FIX "/flows";
    s.lists_dir = FIX "/lists";
    s.messages_file = FIX "/messages.conf";
    flow_diag_init(&d);
    set = flow_set_load(&s, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s:%d: %s\n", d.items[i].file, d.items[i].line,
                d.items[i].msg);
    flow_diag_fini(&d);
    return set == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    flow_set_free(set);
    return 0;
}

static struct flow_ctx ctx = {.now = NOW};
static struct flow_state st;
static struct flow_out out;

/* One step, through the codec as through Redis; checks the page limit. */
static void
step(const char *in)
{
    char buf[FLOW_STATE_MAX], buf2[FLOW_STATE_MAX];
    int n = flow_state_encode(&st, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(flow_state_decode(&st, buf, (size_t)n), 0);
    assert_int_equal(flow_state_encode(&st, buf2, sizeof(buf2)), n);
    assert_string_equal(buf, buf2);
    ctx.nonce[0]++;
    flow_step(set, &st, in, strlen(in), &ctx, &out);
    assert_true(out.used <= out.limit);
    assert_int_equal(out.len, strlen(out.text));
}

static void
start(const char *flow, const char *lang)
{
    memset(ctx.nonce, 0x11, sizeof(ctx.nonce));
    assert_int_equal(flow_start(set, &st, flow, lang, FLOW_CH_USSD, &ctx, &out),
                     0);
}

static void
t_start_language_menu(void **state)
{
    (void)state;
    start("demo", NULL);
    assert_string_equal(out.text, "Language\n1. English\n2. Bangla");
    assert_int_equal(out.enc, FLOW_ENC_GSM7);
    assert_int_equal(out.used, 29);
    assert_int_equal(out.limit, 182);
    assert_false(out.done);
    /* the language is skipped when known */
    start("demo", "bn");
    assert_string_equal(out.text, "আপনার নাম?");
    assert_int_equal(out.enc, FLOW_ENC_UCS2);
    assert_int_equal(out.used, 10);
    assert_int_equal(out.limit, 80);
}

/* A whole English registration, screen by screen. */
static void
t_full_walk(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *screen;
    } rows[] = {
        {"1", "Your name?\n0. Back"},
        {" Rahima  Begum\xe2\x80\x8b ", "Year of birth?\n0. Back"},
        {"1990", "Region?\n1. North\n2. South\n0. Back"},
        {"2", "Area?\n1. Coast\n0. Back"},
        {"1", NULL},
        {"3 1", "Which ID?\n1. NID\n2. Passport\n0. Back"},
        {"1", "NID number?\n0. Back"},
        {"1234567890", "Please check:\nName: Rahima Begum\nBorn: 1990\n"
                       "Region: South\nArea: Coast\nThings: Item number 3, "
                       "Item number 1\nID: NID\nNID: 1234567890\n1. Confirm\n"
                       "2. Change\n0. Back"},
        {"1", "Ref "},
    };
    start("demo", NULL);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        step(rows[i].in);
        if (rows[i].screen == NULL) continue;
        if (i + 1 == sizeof(rows) / sizeof(rows[0]))
            assert_memory_equal(out.text, rows[i].screen,
                                strlen(rows[i].screen));
        else
            assert_string_equal(out.text, rows[i].screen);
    }
    assert_true(out.done);
    assert_string_equal(out.action, "submit_registration");
    assert_int_equal(strlen(out.text), strlen("Ref 0123456789, born 1990."));
    assert_non_null(strstr(out.text, ", born 1990."));

    char rec[4096];
    assert_true(flow_record_json(set, &st, "8801712345678", rec, sizeof(rec)) >
                0);
    assert_non_null(strstr(rec, "\"name\":\"Rahima Begum\""));
    /* answers go under the action's field names (store_as) */
    assert_non_null(strstr(rec, "\"birth_year\":1990"));
    assert_non_null(strstr(rec, "\"skills\":[\"c03\",\"c01\"]"));
    assert_non_null(strstr(rec, "\"district\":"));
    assert_null(strstr(rec, "\"born\""));
    assert_non_null(strstr(rec, "\"nid\":\"1234567890\""));
    assert_non_null(strstr(rec, "\"msisdn\":\"8801712345678\""));
    assert_non_null(strstr(rec, "\"action\":\"submit_registration\""));
    assert_null(strstr(rec, "passport"));
    /* a finished dialogue stays finished */
    step("1");
    assert_true(out.done);
    assert_string_equal(out.text, "Ended.");
}

static void
t_bangla_digits_and_reasons(void **state)
{
    (void)state;
    start("demo", "bn");
    step("রহিমা বেগম");
    assert_string_equal(out.text, "জন্মসাল?\n0. পিছনে");
    step("১৯৯০"); /* Bangla digits are digits */
    assert_memory_equal(out.text, "অঞ্চল?", strlen("অঞ্চল?"));
    assert_string_equal(flow_state_get(&st, "born"), "1990");

    start("demo", "en");
    step("R2D2");
    assert_string_equal(out.text, "Not a name.\nYour name?");
    step("Karim");
    step("1890"); /* out of range */
    assert_string_equal(out.text, "Not a year.\nYear of birth?\n0. Back");
    step("1985");
    assert_string_equal(out.text, "Region?\n1. North\n2. South\n0. Back");
}

static void
t_retries_exhausted(void **state)
{
    (void)state;
    start("demo", "en");
    step("x");
    step("y");
    assert_false(out.done);
    step("z"); /* max_tries 3 */
    assert_true(out.done);
    assert_string_equal(out.text, "Too many tries. Bye.");
    assert_null(out.action);
}

static void
t_back_and_home(void **state)
{
    (void)state;
    start("demo", "en");
    step("0"); /* nothing to go back to: same screen, no reason */
    assert_string_equal(out.text, "Your name?");
    step("Karim");
    step("0");
    assert_string_equal(out.text, "Your name?");
    assert_string_equal(flow_state_get(&st, "name"), "Karim");
    step("Rahim");
    step("1980");
    step("00"); /* home: the flow afresh, answers gone, new key */
    char key[FLOW_KEY_MAX];
    memcpy(key, st.key, sizeof(key));
    assert_string_equal(out.text, "Your name?");
    assert_null(flow_state_get(&st, "name"));
    assert_string_equal(st.lang, "en");
    (void)key;
}

static void
t_paging_64_items(void **state)
{
    (void)state;
    start("demo", "bn");
    step("রহিম");
    step("1990");
    step("1");
    step("1");
    /* 64 Bangla items: many pages of at most 80 UCS-2 units, each with
     * "98. আরও"; numbers stay global. */
    assert_non_null(strstr(out.text, "1. বিষয় নম্বর 1"));
    assert_non_null(strstr(out.text, "98. আরও"));
    assert_int_equal(out.enc, FLOW_ENC_UCS2);
    unsigned pages = 1;
    while (strstr(out.text, "98. ") != NULL) {
        step("98");
        pages++;
        assert_int_equal(st.page, pages - 1);
        assert_non_null(strstr(out.text, "0. পিছনে"));
        assert_true(pages < 64);
    }
    assert_non_null(strstr(out.text, "64. বিষয় নম্বর 64"));
    assert_true(pages >= 10);
    step("0"); /* previous page */
    assert_int_equal(st.page, pages - 2);
    /* picks from any page; too many; duplicates fold */
    step("1 2 3 4");
    assert_memory_equal(out.text, "বেশি হয়েছে।\n", strlen("বেশি হয়েছে।\n"));
    assert_int_equal(st.page, 0);
    step("64,5,64");
    assert_string_equal(flow_state_get(&st, "things"), "c64,c05");
}

static void
t_confirm_edit_confirm(void **state)
{
    (void)state;
    start("demo", "en");
    step("Karim Uddin");
    step("1975");
    step("1"); /* North */
    step("2"); /* Lake */
    step("7");
    step("1"); /* NID */
    step("1234567890123");
    assert_memory_equal(out.text, "Please check:", 13);
    step("2"); /* change */
    assert_string_equal(out.text, "Change which?\n1. Name\n2. Born\n3. Region\n"
                                  "4. Area\n5. Things\n6. ID\n7. NID\n0. Back");
    step("3"); /* region */
    assert_string_equal(out.text, "Region?\n1. North\n2. South\n0. Back");
    step("2"); /* South: the old area no longer fits, so it is asked */
    assert_string_equal(out.text, "Area?\n1. Coast\n0. Back");
    step("1");
    assert_memory_equal(out.text, "Please check:", 13);
    assert_non_null(strstr(out.text, "Region: South\nArea: Coast"));
    /* switch to passport: asked, then back to the read-back */
    step("2");
    step("6");
    step("2");
    assert_string_equal(out.text, "Passport number?\n0. Back");
    step("eb0123456");
    assert_non_null(strstr(out.text, "Passport: EB0123456"));
    assert_null(strstr(out.text, "NID: "));
    /* an unchanged answer returns straight to the read-back */
    step("2");
    step("1");
    step("Karim Uddin Ahmed");
    assert_memory_equal(out.text, "Please check:", 13);
    assert_non_null(strstr(out.text, "Name: Karim Uddin Ahmed"));
    step("1");
    assert_true(out.done);
    char rec[4096];
    assert_true(flow_record_json(set, &st, NULL, rec, sizeof(rec)) > 0);
    assert_null(strstr(rec, "\"nid\""));
    assert_non_null(strstr(rec, "\"passport\":\"EB0123456\""));
    assert_non_null(strstr(rec, "\"msisdn\":null"));
}

static void
t_resume(void **state)
{
    (void)state;
    start("demo", "bn");
    step("রহিম");
    step("1990");
    /* the caller dials again */
    flow_dial(set, &st, NULL, FLOW_CH_USSD, &ctx, &out);
    assert_string_equal(out.text, "অসমাপ্ত ফর্ম।\n1. চালিয়ে যান\n2. নতুন করে");
    step("1");
    assert_memory_equal(out.text, "অঞ্চল?", strlen("অঞ্চল?"));
    flow_dial(set, &st, NULL, FLOW_CH_USSD, &ctx, &out);
    step("2"); /* start again: the dialogue's home flow */
    assert_string_equal(out.text, "আপনার নাম?");
    assert_null(flow_state_get(&st, "name"));
    /* nothing to resume: the entry flow, in the caller's language */
    memset(&st, 0, sizeof(st));
    strcpy(st.lang, "en");
    st.flags = FLOW_SF_LANG;
    flow_dial(set, &st, NULL, FLOW_CH_USSD, &ctx, &out);
    assert_string_equal(out.text, "Main menu\n1. Demo\n2. Quit");
    step("1"); /* a menu option that starts another flow */
    assert_string_equal(st.flow, "demo");
    assert_string_equal(out.text, "Your name?");
}

/* Read-backs after a redial, and every SMS read-back, mask the personal
 * answers: an ID number keeps its last 3 characters, a name is "***". */
static void
t_masked_readback(void **state)
{
    (void)state;
    static const char *const upto[] = {
        "1", "Rahima Begum", "1990", "2", "1", "3 1", "1", "1234567890"};
    start("demo", NULL);
    for (size_t i = 0; i < sizeof(upto) / sizeof(upto[0]); i++)
        step(upto[i]);
    /* the caller who typed them sees them */
    assert_non_null(strstr(out.text, "Name: Rahima Begum\n"));
    assert_non_null(strstr(out.text, "NID: 1234567890\n"));
    /* the phone dials again: whoever holds it does not */
    flow_dial(set, &st, NULL, FLOW_CH_USSD, &ctx, &out);
    step("1");
    assert_memory_equal(out.text, "Please check:", 13);
    assert_non_null(strstr(out.text, "Name: ***\n"));
    assert_non_null(strstr(out.text, "NID: *******890\n"));
    assert_null(strstr(out.text, "Rahima"));
    assert_null(strstr(out.text, "1234567"));
    /* the other answers are shown as before */
    assert_non_null(strstr(out.text, "Born: 1990\n"));
    /* confirming still stores the numbers themselves */
    step("1");
    assert_true(out.done);
    char rec[4096];
    assert_true(flow_record_json(set, &st, NULL, rec, sizeof(rec)) > 0);
    assert_non_null(strstr(rec, "\"nid\":\"1234567890\""));
    assert_non_null(strstr(rec, "\"name\":\"Rahima Begum\""));

    /* an SMS read-back masks from the start (an SMS is kept and read on a
     * shared phone); a new flow after a resumed one does not inherit it */
    memset(ctx.nonce, 0x22, sizeof(ctx.nonce));
    assert_int_equal(
        flow_start(set, &st, "demo", "en", FLOW_CH_SMS, &ctx, &out), 0);
    assert_false(st.flags & FLOW_SF_RESUMED);
    for (size_t i = 1; i < sizeof(upto) / sizeof(upto[0]); i++)
        step(upto[i]);
    assert_memory_equal(out.text, "Please check:", 13);
    assert_non_null(strstr(out.text, "NID: *******890\n"));
    assert_null(strstr(out.text, "Rahima"));

    char m[32];
    flow_mask(FLOW_FT_PASSPORT, "EB0123456", m, sizeof(m));
    assert_string_equal(m, "******456");
    flow_mask(FLOW_FT_NID, "123", m, sizeof(m));
    assert_string_equal(m, "***");
    flow_mask(FLOW_FT_TEXT, "Karim", m, sizeof(m));
    assert_string_equal(m, "***");
    flow_mask(FLOW_FT_NID, "1234567890", m, 5);
    assert_string_equal(m, "****");
}

static void
t_end_outcomes(void **state)
{
    (void)state;
    start("main", "en");
    step("2");
    assert_true(out.done);
    assert_string_equal(out.text, "Goodbye.");
    assert_null(out.action);
    const char *vars[] = {"outcome=try_later", NULL};
    flow_render_end(set, &st, vars, &out);
    assert_string_equal(out.text, "Try later.");
    flow_render_message(set, "bn", FLOW_CH_USSD, "busy", &out);
    assert_string_equal(out.text, "ব্যস্ত।");
    assert_true(out.done);
}

static void
t_keywords(void **state)
{
    (void)state;
    assert_string_equal(flow_keyword(set, "demo"), "demo");
    assert_string_equal(flow_keyword(set, " DeMo "), "demo");
    assert_string_equal(flow_keyword(set, "ডেমো"), "demo");
    assert_null(flow_keyword(set, "nothing"));
}

static void
t_state_corrupt(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "x",
        "v=2&f=demo&n=name&h=demo&c=0&s=1",           /* other version */
        "v=1&f=demo&n=name&h=demo&c=0",               /* no step */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&s=2",       /* repeated key */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&z=1",       /* unknown key */
        "v=1&f=Demo&n=name&h=demo&c=0&s=1",           /* bad id */
        "v=1&f=demo&n=name&h=demo&c=7&s=1",           /* bad channel */
        "v=1&f=demo&n=name&h=demo&c=0&s=99999999999", /* overflow */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&A.x=%zz",   /* bad escape */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&A.x=%00",   /* NUL */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&A.x=%ff",   /* not UTF-8 */
        "v=1&f=demo&n=name&h=demo&c=0&s=1&A.x=1&A.x=2",
        "v=1&f=demo&n=name&h=demo&c=0&s=1&",
        "v=1&f=demo&n=name&h=demo&c=0&s=1&H=a,,b",
        "v=1&f=demo&n=name&h=demo&c=0&s=1&k=XYZ",
        "{\"v\":1}",
    };
    struct flow_state s;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&s, 0xAA, sizeof(s));
        if (flow_state_decode(&s, bad[i], strlen(bad[i])) != FLOW_ESTATE)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(s.step, 0);
    }
    const char *good = "v=1&f=demo&n=name&h=demo&c=0&s=1&A.x=a%26b&H=lang";
    assert_int_equal(flow_state_decode(&s, good, strlen(good)), 0);
    assert_string_equal(flow_state_get(&s, "x"), "a&b");
    assert_string_equal(s.hist[0], "lang");
    /* a state naming a node that no longer exists: a polite end */
    good = "v=1&f=demo&n=gone&h=demo&c=0&s=1&l=en";
    assert_int_equal(flow_state_decode(&st, good, strlen(good)), 0);
    assert_int_equal(flow_step(set, &st, "1", 1, &ctx, &out), FLOW_ENOFLOW);
    assert_true(out.done);
    assert_string_equal(out.text, "Lost.");
}

static void
t_ref(void **state)
{
    (void)state;
    char ref[FLOW_REF_MAX];
    flow_ref_from_key("00000000000000000000000000000000", ref);
    assert_string_equal(ref, "0000000000");
    flow_ref_from_key("ffffffffffff00000000000000000000", ref);
    assert_int_equal(strlen(ref), 10);
    assert_null(strpbrk(ref, "ILOU"));
    char ref2[FLOW_REF_MAX];
    flow_ref_from_key("fffffffffffe00000000000000000000", ref2);
    assert_string_not_equal(ref, ref2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_start_language_menu),
        cmocka_unit_test(t_full_walk),
        cmocka_unit_test(t_bangla_digits_and_reasons),
        cmocka_unit_test(t_retries_exhausted),
        cmocka_unit_test(t_back_and_home),
        cmocka_unit_test(t_paging_64_items),
        cmocka_unit_test(t_confirm_edit_confirm),
        cmocka_unit_test(t_resume),
        cmocka_unit_test(t_masked_readback),
        cmocka_unit_test(t_end_outcomes),
        cmocka_unit_test(t_keywords),
        cmocka_unit_test(t_state_corrupt),
        cmocka_unit_test(t_ref),
    };
    return cmocka_run_group_tests_name("flow_engine", tests, setup, teardown);
}
