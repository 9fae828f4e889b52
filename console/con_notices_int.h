/*
 * con_notices_int.h -- private to the console's notice files: the reads
 * (con_notices.c) and the writes (con_notices_write.c).  A call's state,
 * the replies they share, loading a notice and rendering its texts.
 */
#ifndef CON_NOTICES_INT_H
#define CON_NOTICES_INT_H

#include "console/con_int.h"
#include "notices/notices.h"

/* A call's own state (gw_req_alloc). */
struct con_ntc_api {
    unsigned magic;
    enum notices_action action; /* the write, for the POST actions */
    char id[24];                /* the notice id, digits */
    char caps[3][16];           /* notices.cap, cap_days, cap_per_day */
    char allowed[128];          /* {state,...} the action may start from */
    char to_state[16];
    char vetting[128];
    char audit[512]; /* detail JSON */
    char *body;      /* the POST body as JSON text (create) */
    char *sms_bn, *sms_en;
    char parts_bn[8], parts_en[8], ucs2_en[8];
};

/* The call's state, with notices.cap* as text; NULL (and a 500 answered)
 * out of memory. */
struct con_ntc_api *con_ntc_api_new(struct con_call *call);
/* The state con_ntc_api_new() gave the call (asserted). */
struct con_ntc_api *con_ntc_api_of(struct con_call *call);
/* Copy s into request memory (NULL stays NULL, or out of memory). */
char *con_ntc_dup(struct con_call *call, const char *s);
/* The {} of the path as a notice id into x->id, or a 404 and -1. */
int con_ntc_id_or_404(struct con_call *call, struct con_ntc_api *x);
/* A database refusal as the caller's error: a CHECK or a cast (class 22,
 * 23) is 422, row-level security 403, anything else 503. */
void con_ntc_fail(struct con_call *call, int status,
                  const struct store_tx_result *res);
/* The transaction ran and its first statement returned one row: 0.  Else
 * the caller's answer is sent (the store's error, or status with err and
 * msg when the row is missing) and -1 returned. */
int con_ntc_row_or_4xx(struct con_call *call, int status,
                       const struct store_tx_result *res, int code,
                       const char *err, const char *msg);

/* $1 the notice id: its state, author, texts and the programme's values
 * of the template; read by con_ntc_loaded_or_4xx(). */
extern const char con_ntc_load_sql[];

/* What a loaded notice says; values borrowed from the result. */
struct con_ntc_loaded {
    enum notices_state state;
    const char *author, *text_bn, *text_en;
    struct notices_vars vars;
};

/* con_ntc_load_sql as statement 0 of a transaction that ran: 0.  Else
 * the caller's answer is sent (the store's error, or 404) and -1
 * returned. */
int con_ntc_loaded_or_4xx(struct con_call *call, int status,
                          const struct store_tx_result *res,
                          struct con_ntc_loaded *l);

/* Render both texts of l into x (sms_bn, parts_bn; sms_en, parts_en,
 * ucs2_en when there is an English text; request memory): 0, or -1 with
 * why (a literal). */
int con_ntc_render(struct con_call *call, struct con_ntc_api *x,
                   const struct con_ntc_loaded *l, const char **why);

#endif
