/*
 * flow_label.c -- what a stored answer code means, in words: the label an
 * officer's console shows beside each code of a record (the district
 * "BD-15" as "Dhaka" / "ঢাকা", the sex "f" as "Female" / "নারী").  The
 * label is the one the caller was shown: the item of the list the answering
 * node picks from, or the node's inline option.
 */
#include <string.h>

#include "flows/flow_model.h"

const char *
flow_answer_label(const struct flow_set *set, const char *flow_id,
                  const char *field, const char *code, const char *lang)
{
    const struct flow_def *f = flow_def_find(set, flow_id);
    int li = flow_lang_index(set, lang);
    if (f == NULL || li < 0 || field == NULL || code == NULL) return NULL;
    for (size_t i = 0; i < f->n; i++) {
        const struct flow_node *nd = &f->nodes[i];
        const char *name = nd->store_as ? nd->store_as : nd->field;
        if (name == NULL || strcmp(name, field) != 0) continue;
        for (size_t k = 0; k < nd->nopts; k++)
            if (strcmp(nd->opts[k].value, code) == 0)
                return flow_text_get(&nd->opts[k].label, li);
        if (nd->list != NULL)
            for (size_t k = 0; k < nd->list->n; k++)
                if (strcmp(nd->list->items[k].code, code) == 0)
                    return flow_text_get(&nd->list->items[k].label, li);
    }
    /* a registration in parts: the field may be asked in a later part */
    for (size_t p = 0; p < f->nparts; p++) {
        const struct flow_def *g = flow_def_find(set, f->parts[p]);
        const char *s;
        if (g != NULL && g != f &&
            (s = flow_answer_label(set, g->id, field, code, lang)) != NULL)
            return s;
    }
    return NULL;
}
