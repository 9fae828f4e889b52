/*
 * console.h -- the officer console's API (/api/...): login and console
 * sessions, roles, the route table and its dispatcher, officers, audit;
 * and the `remigate officer` command line.
 *
 * A worker calls console_start() once its server is up (after the other
 * modules): it registers the "/api/" route and opens the console's own
 * PostgreSQL pool and password-hashing threads.  console_fini() frees what
 * console_start() made, after the server's stop hooks ran (console_start
 * registers one that ends every pending call).  With no postgres.dsn the
 * console is off: /api/ answers 503.
 */
#ifndef CONSOLE_H
#define CONSOLE_H

struct gw_server;

/* 0, or -1 (logged) when the worker must not start. */
int console_start(struct gw_server *srv);

/* Free the console of srv; a no-op when it has none. */
void console_fini(struct gw_server *srv);

/* `remigate officer add|passwd|disable|enable|list ...`: argv[0] is
 * "officer".  Returns the process exit status. */
int console_officer_main(int argc, char **argv);

/* `remigate api-routes`: every /api/ route, one per line: method, pattern,
 * who may call it (roles, or "public"), "csrf" or "-".  Exit status. */
int console_routes_main(int argc, char **argv);

#endif
