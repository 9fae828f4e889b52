/*
 * con_stats_label.c -- the labels of a statistics dimension's codes in
 * Bangla and English, as every table, export and dictionary of the
 * console writes them: the lists of GET /api/lists (districts, skills,
 * ...) and, for the closed sets without a list file (sex, status,
 * channel) and the special codes (unknown, none, total), the table here.
 */
#include <string.h>

#include <jansson.h>

#include "console/con_int.h"

struct stats_label {
    const char *dim, *code, *en, *bn;
};

/* Labels of the dimensions without a list file. */
static const struct stats_label stats_labels[] = {
    {"sex", "m", "Male", "পুরুষ"},
    {"sex", "f", "Female", "নারী"},
    {"sex", "x", "Other", "অন্যান্য"},
    {"status", "pending", "Pending", "অপেক্ষমাণ"},
    {"status", "needs_info", "Needs information", "তথ্য প্রয়োজন"},
    {"status", "verified", "Verified", "যাচাইকৃত"},
    {"status", "rejected", "Rejected", "বাতিল"},
    {"channel", "ussd", "USSD", "ইউএসএসডি"},
    {"channel", "sms", "SMS", "এসএমএস"},
    {NULL, "unknown", "Unknown", "অজানা"},
    {"skill", "none", "No skill given", "কোনো দক্ষতা নেই"},
    {NULL, "total", "Total", "মোট"},
};

const char *
con_stats_list_of(const char *dim)
{
    static const char *const m[][2] = {
        {"district", "districts"},  {"division", "divisions"},
        {"education", "education"}, {"country", "countries"},
        {"skill", "skills"},        {"reason", "reasons"},
        {"need", "needs"},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(dim, m[i][0]) == 0) return m[i][1];
    return NULL;
}

void
con_stats_label(const json_t *lists, const char *dim, const char *code,
                const char **en, const char **bn)
{
    const char *list = con_stats_list_of(dim);
    const json_t *arr = list && lists ? json_object_get(lists, list) : NULL;
    size_t i;
    json_t *it;

    *en = *bn = code;
    for (i = 0; i < sizeof(stats_labels) / sizeof(stats_labels[0]); i++)
        if ((stats_labels[i].dim == NULL ||
             strcmp(stats_labels[i].dim, dim) == 0) &&
            strcmp(stats_labels[i].code, code) == 0) {
            *en = stats_labels[i].en;
            *bn = stats_labels[i].bn;
            return;
        }
    json_array_foreach(arr, i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "code")), code) == 0) {
            *en = json_string_value(json_object_get(it, "en"));
            *bn = json_string_value(json_object_get(it, "bn"));
            return;
        }
    }
}
