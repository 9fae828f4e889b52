/*
 * con_lists.c -- GET /api/lists: the code lists of flows.lists
 * (config/lists/NAME.conf: divisions, districts, countries, skills, education,
 * reasons, needs) with their English and Bangla labels, for the console's
 * filters and for showing a code by its name.
 *
 * Read from disk on the first call of each worker and kept: the lists are
 * the flows' too and change only with a release (a SIGHUP reads them
 * again).  The answer is {"districts":[{"code","en","bn","parent"?}], ...},
 * one key per list file (its id), items in the file's order.
 */
#include <dirent.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/con_int.h"

/* One copy per process (the lists are read-only and the same for every
 * server of it); SIGHUP drops it. */
static json_t *con_lists_cache;

/* One list file as a JSON array, or NULL (logged). */
static json_t *
con_list_load(const char *path, const char **id)
{
    config_t cf;
    config_setting_t *items;
    json_t *arr = NULL;
    static char idbuf[64];

    config_init(&cf);
    if (!config_read_file(&cf, path)) {
        GW_LOG_WARN(0, "console: list not read file=%s line=%d why=\"%s\"",
                    path, config_error_line(&cf), config_error_text(&cf));
        goto done;
    }
    if (!config_lookup_string(&cf, "id", id) ||
        (items = config_lookup(&cf, "items")) == NULL ||
        !config_setting_is_list(items))
        goto done;
    snprintf(idbuf, sizeof(idbuf), "%s", *id);
    *id = idbuf;
    arr = json_array();
    for (int i = 0; arr && i < config_setting_length(items); i++) {
        config_setting_t *it = config_setting_get_elem(items, (unsigned)i);
        const char *code, *en = "", *bn = "", *parent = NULL;
        json_t *o;
        if (!config_setting_lookup_string(it, "code", &code)) continue;
        config_setting_lookup_string(it, "en", &en);
        config_setting_lookup_string(it, "bn", &bn);
        config_setting_lookup_string(it, "parent", &parent);
        o = json_pack("{s:s,s:s,s:s}", "code", code, "en", en, "bn", bn);
        if (o && parent) json_object_set_new(o, "parent", json_string(parent));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
done:
    config_destroy(&cf);
    return arr;
}

/* Every *.conf of dir as one object, or NULL. */
static json_t *
con_lists_load(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    json_t *all;

    if (d == NULL) {
        GW_LOG_WARN(0, "console: lists not read dir=%s", dir);
        return NULL;
    }
    all = json_object();
    while (all && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[GW_STR_MAX * 2];
        const char *id = NULL;
        json_t *arr;
        if (e->d_name[0] == '.' || n < 6 ||
            strcmp(e->d_name + n - 5, ".conf") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((arr = con_list_load(path, &id)) != NULL)
            json_object_set_new(all, id, arr);
    }
    closedir(d);
    return all;
}

static int
con_lists_reload(struct gw_server *srv, void *arg)
{
    (void)srv;
    (void)arg;
    json_decref(con_lists_cache);
    con_lists_cache = NULL; /* read again on the next call */
    return 0;
}

int
con_lists_start(struct gw_server *srv)
{
    return gw_server_on_reload(srv, con_lists_reload, NULL);
}

const json_t *
con_lists(struct gw_server *srv)
{
    if (con_lists_cache == NULL)
        con_lists_cache = con_lists_load(gw_server_config(srv)->lists_dir);
    return con_lists_cache;
}

static void
con_lists_get(struct con_call *call)
{
    if (con_lists(gw_req_server(call->req)) == NULL) {
        con_reply_error(call, 503, "unavailable",
                        "the lists could not be read");
        return;
    }
    con_reply_json(call, 200, json_incref(con_lists_cache));
}

const struct con_route con_web_routes[] = {
    {GW_METHOD_GET, "/api/lists", CON_ROLE_ANY, 0, con_lists_get},
    {0, NULL, 0, 0, NULL},
};
