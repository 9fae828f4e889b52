/*
 * flow_action.c -- the record contract: what each action takes (the
 * FLOW_ACTION_FIELDS table of flow.h), shared by the linter and the store,
 * and how a personal value is masked when it is read back.
 */
#include <stdio.h>
#include <string.h>

#include "flows/flow.h"

const struct flow_afield flow_afields[] = {
#define FLOW_X_AF(action, field, type, personal, required)                     \
    {#action, #field, FLOW_FT_##type, personal, required},
    FLOW_ACTION_FIELDS(FLOW_X_AF)
#undef FLOW_X_AF
        {NULL, NULL, FLOW_FT__N, 0, 0}};

static const char *const flow_action_names[] = {
#define FLOW_X_AN(action) #action,
    FLOW_ACTIONS(FLOW_X_AN)
#undef FLOW_X_AN
        NULL};

int
flow_action_known(const char *action)
{
    for (size_t i = 0; flow_action_names[i] != NULL; i++)
        if (strcmp(flow_action_names[i], action) == 0) return 1;
    return 0;
}

const struct flow_afield *
flow_afield_find(const char *action, const char *field)
{
    for (const struct flow_afield *a = flow_afields; a->action != NULL; a++)
        if (strcmp(a->action, action) == 0 && strcmp(a->field, field) == 0)
            return a;
    return NULL;
}

const char *
flow_ftype_name(enum flow_ftype t)
{
    static const char *const names[FLOW_FT__N] = {
#define FLOW_X_FN(name, text) [FLOW_FT_##name] = text,
        FLOW_FTYPES(FLOW_X_FN)
#undef FLOW_X_FN
    };
    return (unsigned)t < FLOW_FT__N ? names[t] : "?";
}

int
flow_ftype_is_id(enum flow_ftype t)
{
    return t == FLOW_FT_NID || t == FLOW_FT_PASSPORT || t == FLOW_FT_ID;
}

void
flow_mask(enum flow_ftype type, const char *value, char *out, size_t cap)
{
    size_t n = strlen(value), o = 0;
    if (cap == 0) return;
    if (!flow_ftype_is_id(type)) {
        snprintf(out, cap, "***");
        return;
    }
    /* ID numbers are ASCII (their validators see to it): one byte, one
     * character; the last 3 stay (none of one so short), so the caller can
     * tell which it was */
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = i + 3 < n || n <= 3 ? '*' : value[i];
    out[o] = '\0';
}
