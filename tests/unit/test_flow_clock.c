/*
 * test_flow_clock.c -- the linter's clock: the parts of a flow's typical
 * path, their screens by kind and their modelled time.  Each case writes
 * one flow file into a temp dir next to the fixture lists and messages,
 * and checks the figures against the clock's own arithmetic or against
 * the engine driven screen by screen.
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
load(const char *flow_text, const struct flow_clock *ck)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/t.conf", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(flow_text, fp);
    fclose(fp);
    struct flow_settings s;
    struct flow_diag d;
    flow_settings_default(&s);
    if (ck != NULL) s.clock = *ck;
    s.flows_dir = dir;
    s.lists_dir = FIX "/lists";
    s.messages_file = FIX "/messages.conf";
    s.entry_ussd = s.entry_sms = "t";
    flow_diag_init(&d);
    struct flow_set *set = flow_set_load(&s, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s:%d: %s\n", d.items[i].file, d.items[i].line,
                d.items[i].msg);
    flow_diag_fini(&d);
    assert_non_null(set);
    return set;
}

struct got {
    struct flow_part_time p[16];
    char lang[16][4];
    size_t n;
};

static void
collect(const struct flow_part_time *t, void *arg)
{
    struct got *g = arg;
    assert_true(g->n < 16);
    g->p[g->n] = *t;
    snprintf(g->lang[g->n], sizeof(g->lang[0]), "%s", t->lang);
    g->n++;
}

#define HEAD "id = \"t\";\nlanguages = [ \"en\", \"bn\" ];\nstart = \"lang\";\n"

/* skip_if_set language, consent menu, name, year, read-back, end */
#define STRAIGHT                                                                      \
    HEAD                                                                              \
        "nodes = (\n"                                                                 \
        "  { id = \"lang\"; kind = \"menu\"; field = \"lang\";\n"                     \
        "    skip_if_set = true; text = { en = \"L\"; bn = \"ভ\"; };\n"             \
        "    options = ( { value = \"en\"; label = { en = \"E\"; bn = "               \
        "\"E\"; }; },\n"                                                              \
        "      { value = \"bn\"; label = { en = \"B\"; bn = \"ব\"; }; } );\n"       \
        "    next = \"ok\"; },\n"                                                     \
        "  { id = \"ok\"; kind = \"menu\"; field = \"ok\";\n"                         \
        "    text = { en = \"Agree?\"; bn = \"রাজি?\"; };\n"                  \
        "    options = ( { value = \"y\"; label = { en = \"Yes\"; bn = "              \
        "\"হ্যাঁ\"; }; },\n"                                                \
        "      { value = \"n\"; next = \"bye\"; label = { en = \"No\"; bn = "         \
        "\"না\"; }; } );\n"                                                       \
        "    next = \"name\"; },\n"                                                   \
        "  { id = \"name\"; kind = \"input\"; field = \"name\"; validator = "         \
        "\"name\"; personal = true;\n"                                                \
        "    label = { en = \"Name\"; bn = \"নাম\"; };\n"                       \
        "    text = { en = \"Name?\"; bn = \"নাম?\"; }; next = \"born\"; },\n"  \
        "  { id = \"born\"; kind = \"input\"; field = \"born\"; validator = "         \
        "\"year\";\n"                                                                 \
        "    min = -80; max = -10; label = { en = \"Born\"; bn = \"জন্ম\"; "  \
        "};\n"                                                                        \
        "    text = { en = \"Born?\"; bn = \"জন্ম?\"; }; next = \"check\"; "  \
        "},\n"                                                                        \
        "  { id = \"check\"; kind = \"confirm\";\n"                                   \
        "    text = { en = \"Check:\"; bn = \"দেখুন:\"; }; next = \"%s\"; " \
        "},\n"                                                                        \
        "%s"                                                                          \
        "  { id = \"bye\"; kind = \"end\"; text = { en = \"Bye\"; bn = "              \
        "\"বিদায়\"; }; }\n"                                              \
        ");\n"

static void
t_straight(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof(text), STRAIGHT, "bye", "");
    struct flow_set *set = load(text, NULL);
    struct got g = {.n = 0};
    unsigned over = flow_clock_parts(set, collect, &g);
    assert_int_equal(over, 0);
    assert_int_equal(g.n, 2); /* one part, in en and in bn */
    for (size_t i = 0; i < g.n; i++) {
        const struct flow_part_time *p = &g.p[i];
        assert_string_equal(p->flow, "t");
        assert_int_equal(p->part, 1);
        assert_int_equal(p->nparts, 1);
        /* the language is known: 4 screens, not 5 */
        assert_int_equal(p->screens, 4);
        assert_int_equal(p->menus, 1);
        assert_int_equal(p->texts, 1);
        assert_int_equal(p->numbers, 1);
        assert_int_equal(p->readbacks, 1);
        assert_int_equal(p->ms, 6000 + 30000 + 10000 + 6000 + 4 * 1000);
        assert_int_equal(p->line, 21); /* the confirm node */
    }
    assert_string_equal(g.lang[0], "en");
    assert_string_equal(g.lang[1], "bn");
    flow_set_free(set);
}

/* Every second of the clock is a setting; over the budget is counted. */
static void
t_budget(void **state)
{
    (void)state;
    char text[4096];
    struct flow_clock ck = {.menu_ms = 1000,
                            .number_ms = 2000,
                            .text_ms = 3000,
                            .search_ms = 4000,
                            .readback_ms = 5000,
                            .round_trip_ms = 100,
                            .budget_ms = 11400};
    snprintf(text, sizeof(text), STRAIGHT, "bye", "");
    struct flow_set *set = load(text, &ck);
    struct got g = {.n = 0};
    assert_int_equal(flow_clock_parts(set, collect, &g), 0);
    assert_int_equal(g.p[0].ms, 1000 + 3000 + 2000 + 5000 + 400);
    flow_set_free(set);
    ck.budget_ms = 11399;
    set = load(text, &ck);
    g.n = 0;
    assert_int_equal(flow_clock_parts(set, collect, &g), 2);
    flow_set_free(set);
}

/* A read-back ends a part: what follows it is the next part. */
static void
t_two_parts(void **state)
{
    (void)state;
    char text[4096];
    snprintf(
        text, sizeof(text), STRAIGHT, "more",
        "  { id = \"more\"; kind = \"input\"; field = \"years\"; validator = "
        "\"number\";\n"
        "    min = 1; max = 50; label = { en = \"Years\"; bn = \"বছর\"; };\n"
        "    text = { en = \"Years?\"; bn = \"বছর?\"; }; next = \"check2\"; "
        "},\n"
        "  { id = \"check2\"; kind = \"confirm\"; fields = [ \"years\" ];\n"
        "    text = { en = \"Check:\"; bn = \"দেখুন:\"; }; next = \"bye\"; "
        "},\n");
    struct flow_set *set = load(text, NULL);
    struct got g = {.n = 0};
    flow_clock_parts(set, collect, &g);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.p[0].part, 1);
    assert_int_equal(g.p[0].nparts, 2);
    assert_int_equal(g.p[1].part, 2);
    assert_int_equal(g.p[1].screens, 2);
    assert_int_equal(g.p[1].numbers, 1);
    assert_int_equal(g.p[1].readbacks, 1);
    assert_int_equal(g.p[1].ms, 10000 + 6000 + 2 * 1000);
    assert_int_equal(g.p[1].line, 26);
    flow_set_free(set);
}

/* A long list: the model reads the pages up to its middle item, as many
 * as a caller pressing "more" sees before that item is on screen. */
static void
t_list_pages(void **state)
{
    (void)state;
    struct flow_set *set = load(
        HEAD "nodes = (\n"
             "  { id = \"lang\"; kind = \"menu\"; field = \"lang\";\n"
             "    skip_if_set = true; text = { en = \"L\"; bn = \"ভ\"; };\n"
             "    options = ( { value = \"en\"; label = { en = \"E\"; bn = "
             "\"E\"; }; },\n"
             "      { value = \"bn\"; label = { en = \"B\"; bn = \"ব\"; }; } "
             ");\n"
             "    next = \"pick\"; },\n"
             "  { id = \"pick\"; kind = \"menu\"; field = \"pick\"; list = "
             "\"many\";\n"
             "    text = { en = \"Which?\"; bn = \"কোনটি?\"; }; next = "
             "\"bye\"; },\n"
             "  { id = \"bye\"; kind = \"end\"; text = { en = \"Bye\"; bn = "
             "\"বিদায়\"; }; }\n"
             ");\n",
        NULL);
    struct got g = {.n = 0};
    flow_clock_parts(set, collect, &g);
    assert_int_equal(g.n, 2);
    for (size_t i = 0; i < g.n; i++) {
        /* the engine: dial, then "more" until item 33 is shown */
        struct flow_state st;
        struct flow_out out;
        struct flow_ctx ctx = {.now = 1795343567};
        memset(&st, 0, sizeof(st));
        flow_start(set, &st, "t", g.lang[i], FLOW_CH_USSD, &ctx, &out);
        unsigned screens = 1;
        while (strstr(out.text, "33. ") == NULL && screens < 64) {
            flow_step(set, &st, "98", 2, &ctx, &out);
            screens++;
        }
        assert_int_equal(g.p[i].menus, screens);
        assert_int_equal(g.p[i].ms, screens * 7000);
    }
    /* Bangla pages hold fewer items */
    assert_true(g.p[1].menus > g.p[0].menus);
    assert_true(g.p[0].menus > 1);
    flow_set_free(set);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/remigate-flowclock.XXXXXX");
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
        cmocka_unit_test(t_straight),
        cmocka_unit_test(t_budget),
        cmocka_unit_test(t_two_parts),
        cmocka_unit_test(t_list_pages),
    };
    return cmocka_run_group_tests_name("flow_clock", tests, setup, teardown);
}
