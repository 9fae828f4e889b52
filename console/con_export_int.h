/*
 * con_export_int.h -- private to the records export (con_export.c) and
 * the data dictionary (con_export_dict.c): the export's columns, so that
 * the dictionary describes exactly the file the export writes.
 */
#ifndef CON_EXPORT_INT_H
#define CON_EXPORT_INT_H

#include <stddef.h>

#include <jansson.h>

#include "console/con_int.h"

/* A column of the records export.  A coded column is written as
 * NAME_code, NAME_label_bn, NAME_label_en; its dim names the labels
 * (con_stats_label(), or "decision" for a decision reason of
 * messages.conf); skills as NAME, NAME_label_bn, NAME_label_en.  type
 * and meaning are the dictionary's words for it. */
enum con_exp_kind { CON_EXP_PLAIN, CON_EXP_CODED, CON_EXP_SKILLS };

struct con_exp_col {
    const char *name;
    enum con_exp_kind kind;
    const char *dim;
    int col; /* of the export's page statement */
    const char *type;
    const char *meaning;
};

/* The i-th column of the file (0, 1, ...): the record's, then the phone
 * number's when contact is set; NULL past the last.  Borrowed (static). */
const struct con_exp_col *con_exp_col(size_t i, int contact);

/* The labels of code of dim (a statistics dimension or "decision"); the
 * code itself when it has none.  lists and set may be NULL; the labels
 * are borrowed like them. */
void con_exp_label(const json_t *lists, const struct flow_set *set,
                   const char *dim, const char *code, const char **en,
                   const char **bn);

#endif
