/*
 * con_routes.c -- every API route table the dispatcher knows, in one list.
 * Each file with handlers exports its own table (con_auth_routes, ...), so
 * adding routes touches only that file and one line here.
 */
#include <stddef.h>

#include "console/con_int.h"

const struct con_route *const con_route_tables[] = {
    con_auth_routes,          /* con_auth.c */
    con_web_routes,           /* con_lists.c */
    con_totp_routes,          /* con_totp.c */
    con_officers_routes,      /* con_officers.c */
    con_audit_routes,         /* con_audit.c */
    con_queue_routes,         /* con_queue.c */
    con_records_routes,       /* con_records.c */
    con_decisions_routes,     /* con_decisions.c */
    con_notices_routes,       /* con_notices.c */
    con_notices_write_routes, /* con_notices_write.c */
    con_stats_routes,         /* con_stats.c */
    con_export_dict_routes,   /* con_export_dict.c */
    con_indic_routes,         /* con_indic.c */
    NULL,
};
