/* sess.h -- the Redis session store: hiredis async on the daemon's libevent
 * base.
 *
 * A session is one Redis hash under PREFIX + key with two fields: "v", a
 * version counter that starts at 1, and "d", an opaque value (the gateway's
 * envelope: flow state, dialogue ids, the last reply).  Every write is a
 * compare-and-set on "v" done by a single-key Lua script, so it is safe with
 * several workers, several daemons and Redis Cluster: of two writers that
 * read version N, exactly one gets N+1 and the other SESS_ECONFLICT.
 *
 * Every call that returns SESS_OK calls its callback exactly once, later,
 * from the event loop (never from inside the call): with the answer, with
 * SESS_ETIMEDOUT when Redis did not answer within cfg.timeout_ms (hiredis
 * 0.14 has no timeouts of its own, so each command carries our timer), or
 * with SESS_EDOWN when the connection dropped or sess_stop() ran first.  A
 * call that returns an error (SESS_EDOWN while disconnected, SESS_EBUSY
 * with too many commands in flight, SESS_EINVAL) never calls back.
 *
 * The store reconnects by itself with exponential backoff (100 ms doubling
 * to SESS_BACKOFF_MAX_MS, less a random tenth so that many workers do not
 * knock in step) after a drop or a failed connect; sess_connected() says
 * whether commands can be sent now.  Every new connection sends a
 * handshake before anything else -- AUTH when there is a password, then
 * TIME -- and counts as connected only once Redis answered it; a refused
 * AUTH (or a Redis that wants one) drops the connection and retries with
 * the same backoff.  Keys passed in are without the prefix.
 *
 * With sentinels (cfg.sentinels, Redis Sentinel), host and port are not
 * used: the primary is the one the sentinels name for cfg.master_name.
 * hiredis 0.14 knows nothing of Sentinel, so this follows the
 * sentinel-clients algorithm itself, on the event loop: before every
 * connection to the primary, ask the sentinels in turn (each within
 * connect_timeout_ms) with SENTINEL get-master-addr-by-name, starting from
 * the one that answered last; connect there, and check with ROLE (in the
 * handshake, before TIME) that it is a primary.  The sentinel that
 * answered stays connected, subscribed to +switch-master: a failover
 * drops the old primary at once (commands in flight: SESS_EDOWN) and
 * connects to the new one.  A -READONLY answer (the primary was demoted
 * under us, with or without sentinels) fails that command with SESS_EDOWN
 * and drops the connection, which is then found again.
 *
 * With a Redis Cluster (cfg.cluster, a list of seed nodes), host, port
 * and sentinels are not used: the store asks a node (the primaries it
 * knows, then the seeds, in turn) for CLUSTER SLOTS, keeps one store of
 * the kind above per primary (its own connection, handshake, backoff and
 * script cache), and sends each command to the primary of its key's slot
 * (sess_slot()).  A -MOVED answer updates that slot, asks for the whole
 * map again, and sends the command once more to the node named (when it
 * is connected; else SESS_EDOWN); -ASK sends ASKING and the command
 * there, once.  A primary that drops fails its commands with SESS_EDOWN,
 * and so does an answer -CLUSTERDOWN (the cluster refused the command:
 * a failover under way); the map is then asked for again (with CLUSTER
 * INFO) until every slot has a connected primary and the cluster says
 * cluster_state:ok -- every 0.1 s while its nodes answer, with the
 * backoff (0.5 s at most) while none does: a replica promoted by the
 * cluster is followed.  sess_connected() is true when every slot has a
 * connected primary and the cluster is ok; max_pending counts per
 * primary.  Every command has exactly one key (PING: none, it goes to
 * one primary).
 */
#ifndef REMIGATE_SESS_H
#define REMIGATE_SESS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sess;

enum {
    SESS_OK = 0,
    SESS_ENOTFOUND = -1, /* no such key */
    SESS_ECONFLICT = -2, /* the version was not the one expected */
    SESS_EDOWN = -3,     /* not connected, or the connection dropped */
    SESS_ETIMEDOUT = -4, /* no answer within timeout_ms */
    SESS_EBUSY = -5,     /* max_pending commands already in flight */
    SESS_EPROTO = -6,    /* Redis answered something unexpected */
    SESS_ENOMEM = -7,
    SESS_EINVAL = -8, /* bad argument (key too long, value too big) */
    SESS_EAUTH = -9,  /* Redis refused our AUTH, or wants one we lack */
    SESS_ELATE = -10  /* sess_push_until(): Redis ran it too late, no-op */
};

/* Said when the connection's state changes: up (error 0, why NULL), or a
 * connect, AUTH or drop that failed (error = the SESS_E* code, why =
 * hiredis's or Redis's message, borrowed for the call).  The same kind of
 * failure twice in a row is said once, so a long outage says one line. */
typedef void sess_state_cb(int error, const char *why, void *arg);

struct sess_cfg {
    const char *host;        /* an IP address or a host name */
    int port;                /* 6379 */
    const char *prefix;      /* prepended to every key, e.g. "remigate:" */
    int timeout_ms;          /* per command, > 0 */
    size_t max_pending;      /* commands in flight at most, > 0 */
    int connect_timeout_ms;  /* 0: timeout_ms */
    const char *password;    /* NULL or "": no AUTH; copied by sess_new() */
    sess_state_cb *on_state; /* NULL: say nothing */
    void *state_arg;
    /* NULL or "": host and port are the primary.  Else a comma-separated
     * list of sentinels, "host:port,host:port" (at most SESS_SENTINELS_MAX;
     * a host is an IP address or a name, an IPv6 address in brackets), and
     * master_name the name they monitor the primary under.  Copied. */
    const char *sentinels;
    const char *master_name;
    /* NULL or "": no cluster.  Else Redis Cluster seed nodes,
     * "host:port,host:port" as sentinels (at most SESS_SENTINELS_MAX);
     * not together with sentinels.  Copied. */
    const char *cluster;
};

#define SESS_SENTINELS_MAX 16

/* Is list a valid value of sess_cfg.sentinels?  NULL if so, else why not
 * (a static message). */
const char *sess_sentinels_check(const char *list);

/* Is list a valid value of sess_cfg.cluster?  NULL if so, else why not
 * (a static message). */
const char *sess_cluster_check(const char *list);

#define SESS_SLOTS 16384
/* Redis Cluster's hash slot of a key (len bytes at key, prefix included):
 * CRC16-XMODEM of the key, or of the part between its first '{' and the
 * next '}' when that part is not empty, modulo SESS_SLOTS. */
unsigned sess_slot(const char *key, size_t len);

/* The longest wait between two connection attempts: Redis is used again at
 * most this long (plus a connect) after it came back. */
#define SESS_BACKOFF_MAX_MS 1000

#define SESS_KEY_MAX   200   /* bytes of a key, prefix included */
#define SESS_VALUE_MAX 24576 /* bytes of a value */

/* A store that is not connected yet.  NULL on error, with a message in
 * err. */
struct sess *sess_new(const struct sess_cfg *cfg, struct event_base *base,
                      char *err, size_t errlen);
/* Begin connecting (and keep reconnecting).  0, or -1 if the event base
 * refused a timer. */
int sess_start(struct sess *s);
/* Disconnect and stop reconnecting; every command in flight calls back
 * with SESS_EDOWN before this returns.  sess_start() may be called again. */
void sess_stop(struct sess *s);
/* sess_stop() if needed, then free. */
void sess_free(struct sess *s);
int sess_connected(const struct sess *s);
/* The primary connected to (or tried) now: the host, borrowed until the
 * next turn of the loop, and its port in *port.  With sentinels, the one
 * they named last (cfg.host:port until one answered). */
const char *sess_addr(const struct sess *s, int *port);

/* value/len and version are valid only during the call.  ENOTFOUND has
 * version 0. */
typedef void sess_get_cb(int status, const char *value, size_t len,
                         uint64_t version, void *arg); /* version 0 for lists */
/* version is the new version on SESS_OK, the current one on
 * SESS_ECONFLICT (0 if the key does not exist). */
typedef void sess_cas_cb(int status, uint64_t version, void *arg);
typedef void sess_done_cb(int status, void *arg);

int sess_get(struct sess *s, const char *key, sess_get_cb *cb, void *arg);

/* Store value if the session's version is `expect` (0: only if the key
 * does not exist), as version expect+1, with a TTL of ttl_s seconds
 * (> 0).  value is borrowed for the call only: it is copied into the
 * command before sess_cas() returns. */
int sess_cas(struct sess *s, const char *key, uint64_t expect,
             const char *value, size_t len, unsigned ttl_s, sess_cas_cb *cb,
             void *arg);

/* Keep a number of bits and a label under key (a session hash whose "d"
 * is "NUMBER" or "NUMBER LABEL", NUMBER in decimal): OR bits into the
 * number (no key, or a "d" that does not start with a number: 0), replace
 * the label with label unless that is NULL or "" (then the old one
 * stays), as the next version, and set the TTL to ttl_s (> 0).  A
 * single-key Lua script, so two writers at once never lose each other's
 * bits.  bits < 2^31, label at most SESS_LABEL_MAX bytes.  sess_get()
 * reads it back.  The callback has the new version on SESS_OK. */
#define SESS_LABEL_MAX 64
int sess_bits_or(struct sess *s, const char *key, uint32_t bits,
                 const char *label, unsigned ttl_s, sess_cas_cb *cb, void *arg);

/* Delete the key (OK even if it did not exist). */
int sess_del(struct sess *s, const char *key, sess_done_cb *cb, void *arg);

/* Append value to the list under key (RPUSH), for queues.  */
int sess_push(struct sess *s, const char *key, const char *value, size_t len,
              sess_done_cb *cb, void *arg);

/* Append value to the list under key (RPUSH) only if Redis runs the
 * command within within_ms of this call, on Redis's own clock (a
 * single-key Lua script compares TIME with a deadline; the offset between
 * the clocks is measured by each connection's handshake, to within half a
 * round trip).  SESS_OK: appended; SESS_ELATE: it arrived too late (Redis
 * was stopped or slow) and changed nothing.  So a caller that gave up on
 * the push after more than within_ms (and a margin for the answer's way
 * back) can say "not stored" truthfully: a command still in the socket
 * when Redis resumes does nothing.  Needs Redis >= 3.2. */
int sess_push_until(struct sess *s, const char *key, const char *value,
                    size_t len, int within_ms, sess_done_cb *cb, void *arg);

/* Append value to the list under key unless an item there already starts
 * with value's first head bytes (head <= len; a single-key Lua script:
 * LRANGE, compare, RPUSH), so that two workers setting the same item
 * aside leave one copy.  For short lists: it reads the whole list.
 * SESS_OK whether or not it was appended. */
int sess_push_once(struct sess *s, const char *key, const char *value,
                   size_t len, size_t head, sess_done_cb *cb, void *arg);

/* Look at the first item of the list under key (LINDEX 0) without taking
 * it: ENOTFOUND when the list is empty.  A drainer stores the item, then
 * takes it with sess_shift(); a crash in between stores it twice, which
 * the store's idempotency keys make harmless. */
int sess_peek(struct sess *s, const char *key, sess_get_cb *cb, void *arg);

/* Remove the first item of the list under key if it is still exactly
 * value (a single-key Lua script: LINDEX 0, compare, LPOP), so two
 * drainers never drop an item neither stored.  SESS_OK whether or not it
 * was removed. */
int sess_shift(struct sess *s, const char *key, const char *value, size_t len,
               sess_done_cb *cb, void *arg);

/* PING, for /healthz. */
int sess_ping(struct sess *s, sess_done_cb *cb, void *arg);

/* The connection's number: it changes whenever the store connects anew.
 * Whatever was read or written under one number may be gone under the
 * next (Redis restarted without its data, or failed over), so a caller
 * that keeps values between calls keeps them for one number only. */
unsigned sess_epoch(const struct sess *s);

/* Commands in flight now (sent, not answered nor timed out). */
size_t sess_pending(const struct sess *s);

const char *sess_strerror(int status);

#endif
