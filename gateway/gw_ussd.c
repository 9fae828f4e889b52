/*
 * gw_ussd.c -- the dialogue endpoints: GET /kannel/mo (Kannel's
 * sms-service) and POST /ussd/at (USSD aggregators).
 *
 * XXX: placeholder until sessions and flows are wired in: both endpoints
 * answer 503 "not ready" (Kannel then sends its reply-couldnotfetch text).
 * The real handlers replace this file; gw_ussd_start() is where they load
 * the flows, connect the session store and register their health probes
 * and reload and stop hooks.
 */
#include "gateway/gw_int.h"

int
gw_ussd_start(struct gw_server *srv)
{
    (void)srv;
    return 0;
}

void
gw_kannel_mo_handle(struct gw_req *r)
{
    gw_reply_error(r, 503, "not ready");
}

void
gw_ussd_at_handle(struct gw_req *r)
{
    gw_reply_error(r, 503, "not ready");
}

void
gw_ussd_fini(struct gw_server *srv)
{
    (void)srv;
}
