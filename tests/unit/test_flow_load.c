/*
 * test_flow_load.c -- the loader and linter: a good set loads; each broken
 * flow file is refused with the exact file:line: message a flow author
 * needs.  Each case writes one flow file into a temp dir next to the
 * fixture lists and messages.
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

#define FIX "tests/unit/fixtures"

static char dir[64];

static struct flow_set *
load(const char *flow_text, struct flow_diag *d)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(flow_text, fp);
    fclose(fp);
    struct flow_settings s;
    flow_settings_default(&s);
    s.flows_dir = dir;
    s.lists_dir = FIX "/lists";
    s.messages_file = FIX "/messages.conf";
    s.entry_ussd = s.entry_sms = "t";
    flow_diag_init(d);
    return flow_set_load(&s, d);
}

/* The flow must be refused, and one diagnostic must be exactly
 * "<dir>/t.conf:<line>: <msg>". */
static void
refused(const char *flow_text, int line, const char *msg)
{
    struct flow_diag d;
    struct flow_set *set = load(flow_text, &d);
    char want[1024], got[1024];
    int found = 0;
    snprintf(want, sizeof(want), "%s/t.conf:%d: %s", dir, line, msg);
    for (size_t i = 0; i < d.n; i++) {
        snprintf(got, sizeof(got), "%s:%d: %s", d.items[i].file,
                 d.items[i].line, d.items[i].msg);
        if (strcmp(got, want) == 0) found = 1;
    }
    if (!found) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "  got %s:%d: %s\n", d.items[i].file,
                    d.items[i].line, d.items[i].msg);
        fail_msg("wanted %s", want);
    }
    assert_null(set);
    flow_diag_fini(&d);
}

#define HEAD "id = \"t\";\nlanguages = [ \"en\", \"bn\" ];\nstart = \"a\";\n"

static void
t_good(void **state)
{
    (void)state;
    struct flow_diag d;
    struct flow_set *set =
        load(HEAD "nodes = (\n"
                  "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                  "    validator = \"name\"; personal = true; next = \"y\";\n"
                  "    text = { en = \"Name?\"; bn = \"নাম?\"; }; },\n"
                  "  { id = \"y\"; kind = \"input\"; field = \"y\";\n"
                  "    validator = \"year\"; next = \"z\";\n"
                  "    text = { en = \"Year?\"; bn = \"সাল?\"; }; },\n"
                  "  { id = \"z\"; kind = \"end\";\n"
                  "    text = { en = \"Bye {y}\"; bn = \"বিদায় {y}\"; }; }\n"
                  ");\n",
             &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s:%d: %s\n", d.items[i].file, d.items[i].line,
                d.items[i].msg);
    assert_non_null(set);
    assert_int_equal(d.n, 0);
    assert_true(flow_exists(set, "t"));
    flow_set_free(set);
    flow_diag_fini(&d);
}

static void
t_broken(void **state)
{
    (void)state;
    /* syntax: libconfig's own line */
    refused(HEAD "nodes = (\n  { id = \"a\"; kind = ; }\n);\n", 5,
            "syntax error");
    /* unknown setting */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"end\";\n"
                 "    colour = \"red\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; }\n);\n",
            6, "unknown setting 'colour' in end");
    /* unknown kind */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"form\"; }\n);\n",
            5, "unknown kind 'form' (menu, input, multi, confirm, end)");
    /* missing translation */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"end\";\n"
                 "    text = { en = \"Bye\"; }; }\n);\n",
            5, "node 'a' has no 'bn' text");
    /* unknown next: the line of the next setting, not of its node */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"name\"; next = \"b\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; }\n);\n",
            6, "next 'b' is not a node of flow 't'");
    /* unreachable node */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; },\n"
                 "  { id = \"b\"; kind = \"end\"; text = { en = \"y\"; bn = "
                 "\"y\"; }; }\n);\n",
            6, "node 'b' cannot be reached from 'a'");
    /* unknown validator and list */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"colour\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            6,
            "unknown validator 'colour' (name, year, age, number, nid, "
            "passport, id, phone, regex)");
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"menu\"; field = \"n\";\n"
                 "    list = \"colours\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            6, "unknown list 'colours'");
    /* dead end */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"name\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; }\n);\n",
            5, "node 'a' is a dead end: give it a 'next'");
    /* a number input that would swallow the back key */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"number\"; min = 0; max = 50;\n"
                 "    next = \"z\"; text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            5,
            "input 'a' accepts the navigation key '0' as an answer: "
            "raise 'min' or change the key");
    /* a question too long for a Bangla USSD page: 76 units + "\n0. পিছনে" */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"name\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"কককককককককককককককককককককককককক"
                 "ককককককককককককককককককককককককককককককককককককককককককককককক"
                 "ককক\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            5,
            "the screen of node 'a' does not fit one ussd page in 'bn' "
            "(85/80 ucs2)");
    /* an end text that overflows with a 60-letter Bangla name */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"name\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\";\n"
                 "    text = { en = \"Thank you very much, {n}, and good "
                 "bye!\"; bn = \"x\"; }; }\n);\n",
            8,
            "end text of node 'z' can be too long for one ussd page in "
            "'en' (96/80 ucs2)");
    /* an unknown placeholder */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"end\";\n"
                 "    text = { en = \"Hi {who}\"; bn = \"x\"; }; }\n);\n",
            5, "unknown placeholder {who}");
}

/* The record contract: personal marks and the action's fields
 * (FLOW_ACTION_FIELDS), each refused with the line a flow author needs. */
#define REG_TAIL                                                               \
    "  { id = \"d\"; kind = \"menu\"; field = \"district\"; next = \"z\";\n"   \
    "    text = { en = \"x\"; bn = \"x\"; };\n"                                \
    "    options = ( { value = \"a\"; label = { en = \"A\"; bn = \"A\"; }; "   \
    "} ); },\n"                                                                \
    "  { id = \"z\"; kind = \"end\"; action = \"submit_registration\";\n"      \
    "    text = { en = \"x\"; bn = \"x\"; }; }\n);\n"

static void
t_record_contract(void **state)
{
    (void)state;
    struct flow_diag d;
    /* a personal input not marked so */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"nid\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            5,
            "input 'a' (validator 'nid') holds personal data: mark it "
            "personal = true");
    /* an NID or passport number in one answer is personal too */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"id\"; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\"; text = { en = \"x\"; bn = "
                 "\"x\"; }; }\n);\n",
            5,
            "input 'a' (validator 'id') holds personal data: mark it "
            "personal = true");
    /* the field renamed: the action does not know it */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"full_name\";\n"
                 "    validator = \"name\"; personal = true; next = \"d\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
            5,
            "action 'submit_registration' takes no field 'full_name' "
            "(store_as one of: consent, name, sex, birth_year, division, "
            "district, country, years_abroad, return_year, reason, "
            "education, skills, need, id_type, nid, passport, id_number)");
    /* store_as names it, on its own line */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"full_name\";\n"
                 "    validator = \"name\"; personal = true; next = \"d\";\n"
                 "    store_as = \"fullname\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
            7,
            "action 'submit_registration' takes no field 'fullname' "
            "(store_as one of: consent, name, sex, birth_year, division, "
            "district, country, years_abroad, return_year, reason, "
            "education, skills, need, id_type, nid, passport, id_number)");
    /* a field the action keeps encrypted fed by a node not marked */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"regex\"; pattern = \"^[A-Z]+$\";\n"
                 "    store_as = \"name\"; next = \"d\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
            5,
            "node 'a' feeds 'name', which action 'submit_registration' "
            "keeps as personal: mark it personal = true");
    /* marked personal, but the action keeps it in clear */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"name\";\n"
                 "    validator = \"name\"; personal = true; next = \"b\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"b\"; kind = \"input\"; field = \"need\";\n"
                 "    validator = \"regex\"; pattern = \"^[a-z]+$\";\n"
                 "    personal = true; next = \"d\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
            8,
            "node 'b' is marked personal, but action 'submit_registration' "
            "keeps 'need' in clear");
    /* the wrong type: a year fed as the NID */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"name\";\n"
                 "    validator = \"name\"; personal = true; next = \"b\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"b\"; kind = \"input\"; field = \"y\";\n"
                 "    validator = \"year\"; personal = true;\n"
                 "    store_as = \"nid\"; next = \"d\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
            10,
            "field 'nid' of node 'b' is int, but action "
            "'submit_registration' takes 'nid' as nid");
    /* a required field missing: the end node's line */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"menu\"; field = \"district\"; "
                 "next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; };\n"
                 "    options = ( { value = \"a\"; label = { en = \"A\"; "
                 "bn = \"A\"; }; } ); },\n"
                 "  { id = \"z\"; kind = \"end\"; action = "
                 "\"submit_registration\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; }\n);\n",
            8,
            "action 'submit_registration' needs the field 'name': no node "
            "of flow 't' holds it");
    /* a personal answer shown in an end text */
    refused(HEAD "nodes = (\n"
                 "  { id = \"a\"; kind = \"input\"; field = \"n\";\n"
                 "    validator = \"name\"; personal = true; next = \"z\";\n"
                 "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                 "  { id = \"z\"; kind = \"end\";\n"
                 "    text = { en = \"Bye {n}\"; bn = \"x\"; }; }\n);\n",
            8,
            "placeholder {n} would show a personal answer on a screen or "
            "in an SMS");
    /* the renamed ID field with store_as and the mark: it loads, and the
     * record carries it under the action's name */
    struct flow_set *set =
        load(HEAD "nodes = (\n"
                  "  { id = \"a\"; kind = \"input\"; field = \"full_name\";\n"
                  "    validator = \"name\"; personal = true; next = \"b\";\n"
                  "    store_as = \"name\";\n"
                  "    text = { en = \"x\"; bn = \"x\"; }; },\n"
                  "  { id = \"b\"; kind = \"input\"; field = \"national_id\";\n"
                  "    validator = \"nid\"; personal = true;\n"
                  "    store_as = \"nid\"; next = \"d\";\n"
                  "    text = { en = \"x\"; bn = \"x\"; }; },\n" REG_TAIL,
             &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s:%d: %s\n", d.items[i].file, d.items[i].line,
                d.items[i].msg);
    assert_non_null(set);
    struct flow_state st;
    struct flow_out out;
    struct flow_ctx ctx = {.now = 1795343567};
    memset(&st, 0, sizeof(st));
    assert_int_equal(flow_start(set, &st, "t", "en", FLOW_CH_USSD, &ctx, &out),
                     0);
    static const char *const in[] = {"Rahima Begum", "1234567890", "1"};
    for (size_t i = 0; i < 3; i++)
        flow_step(set, &st, in[i], strlen(in[i]), &ctx, &out);
    assert_true(out.done);
    char rec[2048];
    assert_true(flow_record_json(set, &st, "8801712345678", rec, sizeof(rec)) >
                0);
    assert_non_null(strstr(rec,
                           "\"answers\":{\"name\":\"Rahima Begum\",\"nid\":"
                           "\"1234567890\",\"district\":\"a\"}"));
    flow_set_free(set);
    flow_diag_fini(&d);

    /* the table: each action's fields once, known types */
    for (const struct flow_afield *a = flow_afields; a->action; a++) {
        assert_true(flow_action_known(a->action));
        assert_ptr_equal(flow_afield_find(a->action, a->field), a);
        assert_string_not_equal(flow_ftype_name(a->type), "?");
        assert_true(!flow_ftype_is_id(a->type) || a->personal);
    }
    assert_null(flow_afield_find("submit_registration", "national_id"));
    assert_false(flow_action_known("drop_tables"));
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/remigate-flowload.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* The labels a console shows beside stored codes: list items and inline
 * options of the shipped register flow. */
static void
t_answer_label(void **state)
{
    (void)state;
    struct flow_settings s;
    struct flow_diag d;
    flow_settings_default(&s);
    s.flows_dir = "config/flows";
    s.lists_dir = "config/lists";
    s.messages_file = "config/messages.conf";
    flow_diag_init(&d);
    struct flow_set *set = flow_set_load(&s, &d);
    assert_non_null(set);
    static const struct {
        const char *field, *code, *lang, *want;
    } cases[] = {
        {"district", "BD-15", "en", "Faridpur"},
        {"district", "BD-15", "bn", "ফরিদপুর"},
        {"sex", "f", "en", "Female"},
        {"sex", "f", "bn", "নারী"},
        {"country", "ZZ", "en", "Other country"}, /* part 2 of register */
        {"skills", "mason", "bn", "রাজমিস্ত্রি"},   /* part 3 */
        {"district", "BD-99", "en", NULL},
        {"sex", "q", "en", NULL},
        {"nosuchfield", "f", "en", NULL},
        {"sex", "f", "fr", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = flow_answer_label(set, "register", cases[i].field,
                                            cases[i].code, cases[i].lang);
        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
    }
    assert_null(flow_answer_label(set, "nosuchflow", "sex", "f", "en"));
    flow_set_free(set);
    flow_diag_fini(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_good),
        cmocka_unit_test(t_broken),
        cmocka_unit_test(t_record_contract),
        cmocka_unit_test(t_answer_label),
    };
    return cmocka_run_group_tests_name("flow_load", tests, setup, teardown);
}
