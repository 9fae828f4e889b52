/*
 * gw_step_sms.c -- what an SMS step does before and around the engine:
 * a repeat of an MO already answered is dropped, STOP and START are
 * recorded, a reply code to a notice is recorded, the record's language
 * is looked up for a caller whose SMS session has none, and the answer
 * goes out through sendsms (gw_step_reply()).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway/gw_int.h"
#include "gateway/gw_ussd_int.h"

/* Is the first word of an SMS one of words (after normalisation)? */
static int
gw_sms_word(const char *word, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(word, words[i]) == 0) return 1;
    return 0;
}

/* STOP or START recorded (status 0) or not: say so by SMS. */
static void
gw_sms_optout_cb(int status, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_OPTOUT:
        break;
    default:
        WRONG("opt-out answered out of turn");
    }
    const char *id = status != 0 ? "try_later"
                     : s->optout ? "sms_stopped"
                                 : "sms_started";
    flow_render_message(s->flows->set, s->st.lang, FLOW_CH_SMS, id, &s->out);
    gw_step_reply(s, s->out.text, s->out.enc, 1);
    gw_req_leave(r);
}

/* A reply of interest recorded (or not): thank the caller, ask for the
 * code when "1" could mean several notices, else the help text. */
static void
gw_sms_interest_cb(int status, int outcome, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_INTEREST:
        break;
    default:
        WRONG("interest answered out of turn");
    }
    const char *id = status != 0                    ? "try_later"
                     : outcome == 1 || outcome == 2 ? "sms_interest"
                     : outcome == 3                 ? "sms_interest_which"
                                                    : "sms_help";
    GW_RLOG(GW_LEVEL_INFO, r, 0, "interest reply outcome=%d", outcome);
    flow_render_message(s->flows->set, s->st.lang, FLOW_CH_SMS, id, &s->out);
    gw_step_reply(s, s->out.text, s->out.enc, 1);
    gw_req_leave(r);
}

/* Could word be a reply to a notice: "1", or a reply code (a letter then
 * 1..7 letters or digits, as 008_notices.sql allows)? */
static int
gw_sms_reply_code(const char *word)
{
    size_t n = strlen(word);
    if (strcmp(word, "1") == 0) return 1;
    if (n < 2 || n > 8) return 0;
    if (!((word[0] >= 'A' && word[0] <= 'Z') ||
          (word[0] >= 'a' && word[0] <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = word[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    /* a code has a digit; words without one are left to the keywords */
    return strcspn(word, "0123456789") < n;
}

/* The language of an SMS answer, one rule for every keyword (STOP,
 * START, HELP, REG, SKILL, STATUS, their Bangla words) and for the help
 * text sent outside a dialogue: the language of the caller's SMS session
 * (chosen or given in the last sessions.sms_ttl), else known (the
 * language of the caller's record; NULL: none), else the script of the
 * first word: Bangla (anything outside ASCII) -> "bn", a Latin letter ->
 * "en", neither (digits, "?", nothing) -> "" (the flows' default). */
static const char *
gw_sms_lang(const struct flow_state *st, const char *known, const char *word)
{
    if (st->flags & FLOW_SF_LANG) return st->lang;
    if (known != NULL && known[0] != '\0') return known;
    int letter = 0;
    for (const unsigned char *p = (const unsigned char *)word; *p; p++) {
        if (*p >= 0x80) return "bn";
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) letter = 1;
    }
    return letter ? "en" : "";
}

/* An SMS, once the language on record is known (known: NULL when the
 * caller has none, or it could not be read): STOP and START (and their
 * Bangla words) switch programme notices off and on; a keyword starts its
 * flow; HELP (or anything outside a dialogue) gets the help text;
 * otherwise it answers the open question.  One question per SMS, the
 * session kept for sessions.sms_ttl. */
static void
gw_sms_answer(struct gw_step *s, const char *known)
{
    static const char *const help[] = {"HELP", "সাহায্য", "?", NULL};
    /* the usual opt-out and opt-in words (reference/notices.md 6): never
     * YES, and no other message re-subscribes a number */
    static const char *const stop[] = {
        "STOP",  "STOPALL", "UNSUBSCRIBE", "CANCEL", "END",   "QUIT", "বন্ধ",
        "বাতিল", "থামুন",    "BONDHO",      "BONDO",  "BATIL", NULL};
    static const char *const start[] = {"START", "UNSTOP", "চালু",
                                        "শুরু",    "CHALU",  NULL};
    const struct flow_set *set = s->flows->set;
    struct flow_ctx ctx = {.now = s->now};
    gw_ussd_nonce(s->u, ctx.nonce, sizeof(ctx.nonce));

    char norm[FLOW_INPUT_MAX + 1], word[FLOW_INPUT_MAX + 1];
    if (s->input_len > FLOW_INPUT_MAX ||
        flow_text_normalise(s->input, s->input_len, 1, norm, sizeof(norm)) < 0)
        norm[0] = '\0';
    size_t wl = strcspn(norm, " ");
    memcpy(word, norm, wl);
    word[wl] = '\0';

    char lang[FLOW_LANG_MAX];
    snprintf(lang, sizeof(lang), "%s", gw_sms_lang(&s->st, known, word));
    int out = gw_sms_word(word, stop) ? 1 : gw_sms_word(word, start) ? 0 : -1;
    if (out >= 0) {
        snprintf(s->st.lang, sizeof(s->st.lang), "%s", lang);
        s->optout = out;
        gw_step_to(s, GW_STEP_OPTOUT);
        if (gw_sms_optout(s->u->srv, s->msisdn, out, gw_sms_optout_cb, s) !=
            0) {
            GW_RLOG(GW_LEVEL_WARN, s->r, 0, "opt-out not recorded");
            gw_sms_optout_cb(-1, s);
        }
        return;
    }
    const char *kw = wl ? flow_keyword(set, word) : NULL;
    int live = s->st.flow[0] && !(s->st.flags & FLOW_SF_DONE);
    if (kw == NULL && !live && gw_sms_reply_code(word) &&
        s->u->cfg->pg_dsn[0] != '\0') {
        /* outside a dialogue, "J12" or "1" may answer a notice */
        snprintf(s->st.lang, sizeof(s->st.lang), "%s", lang);
        gw_step_to(s, GW_STEP_INTEREST);
        if (gw_sms_interest(s->u->srv, s->msisdn, word, gw_sms_interest_cb,
                            s) != 0)
            gw_sms_interest_cb(-1, 0, s);
        return;
    }
    if (kw != NULL) {
        /* REG after part 1 was saved: the first part still to do */
        unsigned parts = s->st.parts, k, total;
        const char *next = flow_part_next(set, &s->st, &k, &total);
        if (next != NULL && flow_part_num(set, kw) == 1) kw = next;
        memset(&s->st, 0, sizeof(s->st));
        flow_start(set, &s->st, kw, lang, FLOW_CH_SMS, &ctx, &s->out);
        s->st.flags |= FLOW_SF_LANG;
        s->st.parts = parts;
        gw_metric_inc(GW_M_SESSIONS, "started", NULL);
    } else if (!live || gw_sms_word(word, help)) {
        flow_render_message(set, lang, FLOW_CH_SMS, "sms_help", &s->out);
        gw_step_reply(s, s->out.text, s->out.enc, 1);
        return;
    } else {
        flow_step(set, &s->st, s->input, s->input_len, &ctx, &s->out);
    }
    gw_step_finish(s);
}

/* The caller's record looked up for its language. */
static void
gw_sms_lang_cb(const struct gw_act_result *res, void *arg)
{
    struct gw_step *s = arg;
    struct gw_req *r = s->r;
    gw_req_enter(r);
    switch (s->state) {
    case GW_STEP_LOOKUP:
        break;
    default:
        WRONG("language lookup answered out of turn");
    }
    gw_sms_answer(s, res->status == GW_ACT_DONE ? res->lang : NULL);
    gw_req_leave(r);
}

/* An SMS: a repeat of one already answered is dropped; without a language
 * in the caller's SMS session, the record's is looked up first (when there
 * is a database). */
void
gw_sms_run(struct gw_step *s)
{
    struct gw_env *e = &s->env;
    if (s->mo[0] && strcmp(e->mo, s->mo) == 0) {
        /* Kannel delivered this MO twice: the answer went out already */
        gw_metric_inc(GW_M_DUPLICATES, "sms", NULL);
        GW_RLOG(GW_LEVEL_INFO, s->r, 0, "duplicate SMS: not answered again");
        gw_flows_unref(s->flows);
        s->flows = NULL;
        gw_reply_text(s->r, 200, "text/plain; charset=utf-8", "");
        return;
    }
    if (!s->parts_read) {
        /* REG offers the part still to do, whichever channel saved the
         * others; an answer to a part saved by USSD meanwhile is not
         * taken */
        gw_step_parts_read(s);
        return;
    }
    if ((s->st.flags & FLOW_SF_LANG) || s->u->cfg->pg_dsn[0] == '\0') {
        gw_sms_answer(s, NULL);
        return;
    }
    char rec[GW_MSISDN_MAX + 16];
    int n = snprintf(rec, sizeof(rec), "{\"msisdn\":\"%s\"}", s->msisdn);
    gw_step_to(s, GW_STEP_LOOKUP);
    if (gw_action_run(s->u->srv, "status_lookup", rec, (size_t)n,
                      gw_sms_lang_cb, s) != 0)
        gw_sms_answer(s, NULL);
}
