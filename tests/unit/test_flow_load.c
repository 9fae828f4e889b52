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
                  "    validator = \"name\"; next = \"z\";\n"
                  "    text = { en = \"Name?\"; bn = \"নাম?\"; }; },\n"
                  "  { id = \"z\"; kind = \"end\";\n"
                  "    text = { en = \"Bye {n}\"; bn = \"বিদায় {n}\"; }; }\n"
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
            "passport, phone, regex)");
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_good),
        cmocka_unit_test(t_broken),
    };
    return cmocka_run_group_tests_name("flow_load", tests, setup, teardown);
}
