/*
 * orizuru_py's protocol, checked exhaustively with spin (README.md beside this file says
 * what it proves and what it leaves out).
 *
 * One queue, NM messages, two consumer ids: W (id 0), a Worker (prefetch list, chunk
 * starts, started takes, graceful stop), and C (id 1), a Consumer with a fixed token whose
 * successor of the same id may start after it dies. A garbage collector, a clock. Each
 * Lua script is one atomic step named after it; each client step is a step of its own,
 * and a client may crash between any two (its memory is lost, its lists stay). A client
 * that is not scheduled while the clock ticks is frozen: it resumes as a zombie.
 *
 * Switches: the defaults are the protocol as it should be; TODAY_* reproduce the code as
 * it is where the model finds a defect; MUTANT_* break the protocol on purpose.
 */

#ifndef NM
#define NM 2          /* messages */
#endif
#ifndef MAXATT
#define MAXATT 2      /* max_attempts */
#endif
#ifndef WTAKES
#define WTAKES 2      /* takes of W */
#endif
#ifndef CTAKES
#define CTAKES 2      /* takes of each instance of C */
#endif
#ifndef SETTLES
#define SETTLES 1     /* C's application settles every way (0: acks or rejects) */
#endif
#ifndef FAULTS
#define FAULTS 1      /* connection faults in a run: lost replies, resends, failed sends */
#endif
#ifndef LIVES
#define LIVES 2       /* instances of C's id: C and its successors of the same id */
#endif
#ifndef WORKER
#define WORKER 1      /* whether W runs */
#endif
#ifndef CONSUMER
#define CONSUMER 1    /* whether C runs */
#endif
#define NC 2          /* consumer ids */
#define TT 1          /* a deadline: 1 ahead (a tick passes it), 0 passed */
#define W 0
#define C 1

/* Places. A message is in exactly one at the end of every step. */
#define QUEUE 0
#define DELAYED 1
#define UNACK 2
#define DEAD 3
#define ACKED 4
#define OTHER 5       /* pushed to another queue */
#define PRE(c) (6 + 2 * (c))
#define PROC(c) (7 + 2 * (c))
#define NOWHERE 255
#define NONE 255

/* A client's guard of a message. */
#define G_NONE 0
#define G_WAITING 1   /* a worker's: in its prefetch list, no thread began it */
#define G_READY 2     /* a worker's: taken "started" into processing, no thread began it */
#define G_RUNNING 3   /* in a handler */
#define G_OK 4        /* the handler returned: ack pending */
#define G_FAILED 5    /* the handler raised: retry or dead letter pending */
#define G_RESEND 6    /* a worker's start whose reply was lost: sent again, "resent" */

/* Where a client's take is. */
#define T_IDLE 0
#define T_READ 1      /* reconcile: read both lists (MULTI LRANGE LRANGE) */
#define T_HB_PRE 2    /* reconcile: hand_back.lua on the prefetch list */
#define T_HB_PROC 3   /* reconcile: hand_back.lua on the processing list */
#define T_TAKE 4      /* take.lua */
#define T_ZADD 5      /* the blocking take's pipeline: ZADD GT deadline ... */
#define T_BLMOVE 6    /* ... BLMOVE queue dest, LLEN dest (served now, later, or never) */

/* Faults of one request. */
#define F_NONE 0
#define F_LOST 1      /* applied, reply lost: the plan sees an error */
#define F_RESENT 2    /* applied, reply lost, sent again by redis-py: applied twice */
#define F_FAILED 3    /* not applied: the plan sees an error */

/* The server. */
byte loc[NM];         /* where each message is */
byte dv[NM];          /* its delivery count (in its bytes) */
bool reg[NC];         /* registered in the consumers zset */
byte rem[NC];         /* ticks until its deadline passes (0: passed) */

/* The clients (C's successor reuses C's slot: it starts after C died). */
byte gs[NC * NM];     /* guard state */
byte gd[NC * NM];     /* the delivery count in the bytes the client holds */
byte dup[NC];         /* extra guards: of a message it holds a guard of already */
bool recon[NC];       /* _reconcile */
bool ended[NC];       /* no instance of this id runs any more */
byte lives = LIVES;

/* Ghosts. */
byte runs[NM];        /* handler runs of each message */
byte faults;
bool over;            /* the final drain has run */

#define G(c, m) gs[(c) * NM + (m)]
#define GD(c, m) gd[(c) * NM + (m)]
#define BIT(m) (1 << (m))
#define mine(c, m) (loc[m] == PRE(c) || loc[m] == PROC(c))
#define knows(c, m) (G(c, m) != G_NONE && GD(c, m) == dv[m])
#define orphan(c, m) (mine(c, m) && !knows(c, m))
#define stale(c, m) (G(c, m) != G_NONE && !(mine(c, m) && GD(c, m) == dv[m]))
#define held(c, m) (G(c, m) != G_NONE)
#define in_dest(c, m) (loc[m] == dest)
#define is_waiting(c, m) (G(c, m) == G_WAITING)
#define is_resend(c, m) (G(c, m) == G_RESEND)
#define is_ready(c, m) (G(c, m) == G_READY)
#define is_running(c, m) (G(c, m) == G_RUNNING)
#define is_ok(c, m) (G(c, m) == G_OK)
#define is_failed(c, m) (G(c, m) == G_FAILED)

/* ANY(pred, c), COUNT(pred, c): over the messages. PICK(p, got): any message in place p
   (a list's order is abstracted: any may come next), or NONE. PICKG: any guard so. */
#if NM == 2
#define ANY(e, c) (e(c, 0) || e(c, 1))
#define COUNT(e, c) ((e(c, 0) -> 1 : 0) + (e(c, 1) -> 1 : 0))
#define PICK(p, got) if :: loc[0] == (p) -> got = 0 :: loc[1] == (p) -> got = 1 \
                        :: else -> got = NONE fi
#define PICKG(c, s, got) if :: G(c, 0) == (s) -> got = 0 :: G(c, 1) == (s) -> got = 1 \
                            :: else -> got = NONE fi
#elif NM == 3
#define ANY(e, c) (e(c, 0) || e(c, 1) || e(c, 2))
#define COUNT(e, c) ((e(c, 0) -> 1 : 0) + (e(c, 1) -> 1 : 0) + (e(c, 2) -> 1 : 0))
#define PICK(p, got) if :: loc[0] == (p) -> got = 0 :: loc[1] == (p) -> got = 1 \
                        :: loc[2] == (p) -> got = 2 :: else -> got = NONE fi
#define PICKG(c, s, got) if :: G(c, 0) == (s) -> got = 0 :: G(c, 1) == (s) -> got = 1 \
                            :: G(c, 2) == (s) -> got = 2 :: else -> got = NONE fi
#endif

/* -- moves: every script moves a message out of one place and into one other --------- */

inline out(m) { assert(loc[m] != NOWHERE); loc[m] = NOWHERE }

/* "Exactly one place": a message is put only where it was just taken out. */
inline put(m, p) { assert(loc[m] == NOWHERE); loc[m] = p }

/* "The delivery count never goes down": checked at every write of it. */
inline count(m, n) { assert(n >= dv[m]); dv[m] = n }

/* A message handed to a handler. "Every run is counted": each earlier run of it has
   been counted in its delivery count, so a poison that kills every consumer it reaches
   is dead-lettered at max_attempts. */
inline handle(c, m) {
  assert(dv[m] >= runs[m]);
  G(c, m) = G_RUNNING;
  runs[m] = (runs[m] < MAXATT + 1 -> runs[m] + 1 : runs[m])
}

/* lib.lua oz_return_all, for each message it pops: a delivery ended without an ack:
   counted, then back, or dead. */
inline oz_return(m) {
#ifdef MUTANT_UNCOUNTED_REAP
  put(m, QUEUE)
#else
  count(m, dv[m] + 1);
  if
  :: dv[m] >= MAXATT -> put(m, DEAD)
  :: else -> put(m, QUEUE)
  fi
#endif
}

/* register.lua: a beat, on the server's clock. */
inline register(c) { reg[c] = 1; rem[c] = TT }

/* ZADD consumers GT deadline id: a take's registration, with the deadline the client
   reckoned before sending (d: TT, or 0 when it froze between reckoning and sending). */
inline zadd_gt(c, d) {
#ifdef MUTANT_NO_REGISTER
  skip
#else
  if
  :: reg[c] -> rem[c] = (d > rem[c] -> d : rem[c])
  :: else -> reg[c] = 1; rem[c] = d
  fi
#endif
}

/* recover.lua, one chunk (RECOVER_CHUNK 1): the prefetch list first, uncounted, then the
   processing list, counted; deregistered once both are empty. reap: the GC's, only past
   the deadline. st := 0 not done, 1 done, 2 more to move. */
inline recover(c, reap, st, m) {
  if
#ifdef MUTANT_NO_RECHECK
  :: reap && !reg[c] -> st = 0
#else
  :: reap && !(reg[c] && rem[c] == 0) -> st = 0
#endif
  :: else ->
    assert(!(reap && reg[c] && rem[c] > 0));   /* "no live consumer is reaped" */
    PICK(PRE(c), m);
    if
    :: m != NONE -> out(m); put(m, QUEUE)
    :: else ->
      PICK(PROC(c), m);
      if
      :: m != NONE -> out(m); oz_return(m)
      :: else
      fi
    fi;
    if
    :: ANY(mine, c) -> st = 2
    :: else -> reg[c] = 0; rem[c] = 0; st = 1
    fi
  fi;
  m = 0
}

/* The take's reply: what _note decides (its lists longer than what the client holds: a
   reply was lost), then the guards. "Orphans are noticed": messages in its lists that
   it does not know make it reconcile, unless as many stale guards hide them (guards of
   messages the GC took back while it was frozen: noticed once those settle). */
inline reply(c, got, into, worker, n, k) {
#ifdef TODAY_LENGTH
  n = COUNT(in_dest, c);              /* LLEN of the take's destination list only */
#else
  n = COUNT(mine, c);                 /* LLEN of both lists */
#endif
  k = COUNT(held, c) + dup[c];
  if
  :: n > k + (got != NONE -> 1 : 0) -> recon[c] = 1
  :: else
  fi;
  if
  :: got != NONE ->
    if :: held(c, got) -> dup[c]++ :: else fi;  /* taken again: the old guard is stale */
    GD(c, got) = dv[got];
    if
    :: !worker -> handle(c, got)
    :: worker && into == PROC(c) -> G(c, got) = G_READY
    :: worker && into == PRE(c) -> G(c, got) = G_WAITING
    fi
  :: else
  fi;
  assert(recon[c] || COUNT(orphan, c) <= COUNT(stale, c) + dup[c]);
  n = 0; k = 0
}

/* take.lua for one message: register (ZADD GT), then move one into dest; "started"
   (a worker whose handler is quick): a fresh one straight into processing. */
inline take_lua(c, d, started, got, into) {
  zadd_gt(c, d);
  PICK(QUEUE, got);
  if
  :: got != NONE ->
    out(got);
    into = ((started && dv[got] == 0) -> PROC(c) : dest);
    put(got, into)
  :: else
  fi
}

/* hand_back.lua: the messages of mask found in list go to the queue, uncounted. */
inline hand_back(list, mask, m) {
  m = 0;
  do
  :: m < NM ->
     if :: (mask & BIT(m)) && loc[m] == list -> out(m); put(m, QUEUE) :: else fi;
     m++
  :: else -> break
  od;
  m = 0
}

/* -- the processes ------------------------------------------------------------------ */

proctype Client(byte c; bool worker) {
  byte m, got, into, n, k, st, d, tpc, budget, fault, stage, unkp, unkq;
  bool started;
  byte dest = (worker -> PRE(c) : PROC(c));

start:
  budget = (worker -> WTAKES : CTAKES);
#ifndef TODAY_TOKEN
  /* What its lists hold when an instance starts is a dead predecessor's of the same id
     (a fixed token): returned as the GC would, the processing list counted. */
  do
  :: atomic { recover(c, 0, st, m); if :: st != 2 -> st = 0; break :: else -> st = 0 fi }
  :: goto crash
  od;
#endif
  atomic { register(c); recon[c] = 1 };
  do
  :: goto crash
  :: atomic { stage < 4 -> register(c) }           /* the heartbeat thread's beat */

  /* -- taking -- */
  :: atomic { tpc == T_IDLE && stage == 0 && budget > 0 ->
       budget--;
       tpc = (recon[c] -> T_READ : T_TAKE) }
  :: atomic { tpc == T_READ ->                      /* _hand_back_unknown reads its lists */
       m = 0;
       do
       :: m < NM ->
          if :: orphan(c, m) && loc[m] == PRE(c) -> unkp = unkp | BIT(m) :: else fi;
          if :: orphan(c, m) && loc[m] == PROC(c) -> unkq = unkq | BIT(m) :: else fi;
          m++
       :: else -> break
       od;
       m = 0; tpc = T_HB_PRE }
  :: atomic { tpc == T_HB_PRE -> hand_back(PRE(c), unkp, m); unkp = 0; tpc = T_HB_PROC }
  :: atomic { tpc == T_HB_PROC ->
       hand_back(PROC(c), unkq, m); unkq = 0; recon[c] = 0; tpc = T_TAKE }
  :: atomic { tpc == T_TAKE ->
       if :: d = TT :: d = 0 fi;
       if :: started = 0 :: worker -> started = 1 fi;
       if
       :: fault = F_NONE
       :: faults < FAULTS -> faults++; fault = F_LOST
       :: faults < FAULTS -> faults++; fault = F_RESENT
       :: faults < FAULTS -> faults++; fault = F_FAILED
       fi;
       if
       :: fault == F_FAILED -> got = NONE
       :: else -> take_lua(c, d, started, got, into)
       fi;
       if
       :: fault == F_RESENT -> take_lua(c, d, started, got, into)   /* its reply counts */
       :: else
       fi;
       if
       :: fault == F_LOST || fault == F_FAILED ->
          recon[c] = 1; tpc = T_IDLE                /* the error: _backoff sets _reconcile */
       :: else ->
          reply(c, got, into, worker, n, k);
          tpc = (got != NONE -> T_IDLE : T_ZADD)    /* none waiting: block for one */
       fi;
       d = 0; got = 0; into = 0; fault = 0; started = 0 }
  :: atomic { tpc == T_ZADD ->
       if :: d = TT :: d = 0 fi;
       zadd_gt(c, d);
       tpc = T_BLMOVE }
  :: atomic { tpc == T_BLMOVE ->
       if
       :: fault = F_NONE
       :: faults < FAULTS -> faults++; fault = F_RESENT
       fi;
       PICK(QUEUE, got);
       if
       :: got != NONE -> out(got); put(got, dest)
#ifndef TODAY_BLOCK
          ; zadd_gt(c, d)                           /* registered again after the move */
#endif
       :: else
       fi;
       if
       :: fault == F_RESENT ->                      /* ZADD, BLMOVE, LLEN, HLEN again */
          zadd_gt(c, d);
          PICK(QUEUE, got);
          if
          :: got != NONE -> out(got); put(got, dest)
#ifndef TODAY_BLOCK
             ; zadd_gt(c, d)
#endif
          :: else
          fi
       :: else
       fi;
       reply(c, got, dest, worker, n, k);
       got = 0; d = 0; fault = 0; tpc = T_IDLE }

  /* -- a worker's threads: start a chunk (one message), run it, settle it -- */
  :: atomic { worker && ANY(is_waiting, c) ->      /* start.lua */
       PICKG(c, G_WAITING, m);
       if
       :: fault = F_NONE
       :: faults < FAULTS -> faults++; fault = F_LOST
       :: faults < FAULTS -> faults++; fault = F_RESENT
       fi;
       if :: loc[m] == PRE(c) -> out(m); put(m, PROC(c)); st = 1 :: else -> st = 0 fi;
       if
       :: fault == F_LOST -> G(c, m) = G_RESEND     /* _settling sends it again, "resent" */
       :: fault == F_RESENT ->                      /* redis-py sent it again, not "resent" */
          if :: loc[m] == PRE(c) -> out(m); put(m, PROC(c)); st = 1 :: else -> st = 0 fi;
          if :: st == 1 -> handle(c, m) :: else -> G(c, m) = G_NONE fi
       :: fault == F_NONE ->
          if :: st == 1 -> handle(c, m) :: else -> G(c, m) = G_NONE fi
       fi;
       m = 0; st = 0; fault = 0 }
  :: atomic { worker && ANY(is_resend, c) ->       /* start.lua, resent */
       PICKG(c, G_RESEND, m);
       if
       :: loc[m] == PRE(c) -> out(m); put(m, PROC(c)); handle(c, m)
       :: loc[m] == PROC(c) -> handle(c, m)         /* 3: the lost sending started it */
       :: else -> G(c, m) = G_NONE
       fi;
       m = 0 }
  :: atomic { dup[c] > 0 -> dup[c]-- }             /* a stale guard settles: no longer ours */
  :: atomic { worker && ANY(is_ready, c) ->        /* a thread begins a started chunk */
       PICKG(c, G_READY, m); handle(c, m); m = 0 }
  :: atomic { worker && ANY(is_running, c) ->      /* the handler returns, or raises */
       PICKG(c, G_RUNNING, m);
       if :: G(c, m) = G_OK :: G(c, m) = G_FAILED fi;
       m = 0 }
  :: atomic { worker && ANY(is_ok, c) ->           /* ack.lua, by id */
       PICKG(c, G_OK, m);
       if
       :: faults < FAULTS -> faults++               /* not applied: sent again later */
#ifdef MUTANT_SETTLE_FIRST
          ; G(c, m) = G_NONE                        /* the guard was settled before */
#endif
       :: true ->
          if :: loc[m] == PROC(c) -> out(m); put(m, ACKED) :: else fi;
          G(c, m) = G_NONE
       fi;
       m = 0 }
  :: atomic { worker && ANY(is_failed, c) ->       /* judge: retry.lua or dead_letter.lua */
       PICKG(c, G_FAILED, m);
       if
       :: loc[m] == PROC(c) && GD(c, m) + 1 >= MAXATT -> out(m); put(m, DEAD)
       :: loc[m] == PROC(c) && GD(c, m) + 1 < MAXATT ->
          out(m); count(m, dv[m] + 1); put(m, DELAYED)
       :: else
       fi;
       G(c, m) = G_NONE; m = 0 }

  /* -- a consumer's application settles what it runs, each way the API offers -- */
  :: atomic { !worker && ANY(is_running, c) ->
       PICKG(c, G_RUNNING, m);
       if
       :: faults < FAULTS -> faults++               /* the ack not applied: tried again */
#ifdef MUTANT_SETTLE_FIRST
          ; G(c, m) = G_NONE
#endif
       :: loc[m] == PROC(c) && dv[m] == GD(c, m) ->  /* ack: LREM of the exact bytes */
          out(m); put(m, ACKED); G(c, m) = G_NONE
       :: !(loc[m] == PROC(c) && dv[m] == GD(c, m)) -> G(c, m) = G_NONE   /* ack: False */
       :: loc[m] == PROC(c) -> out(m); put(m, UNACK); G(c, m) = G_NONE    /* reject */
#ifdef MUTANT_COPY
       :: loc[m] != PROC(c) -> put(m, UNACK); G(c, m) = G_NONE   /* LPUSH unack, then LREM */
#endif
#if SETTLES
       :: loc[m] == PROC(c) -> out(m); put(m, OTHER); G(c, m) = G_NONE    /* push */
       :: loc[m] == PROC(c) ->                                            /* retry */
          out(m); count(m, dv[m] + 1); put(m, DELAYED); G(c, m) = G_NONE
       :: loc[m] == PROC(c) -> out(m); put(m, DEAD); G(c, m) = G_NONE     /* dead_letter */
#endif
       :: loc[m] != PROC(c) -> G(c, m) = G_NONE     /* any of them: False, not ours now */
       fi;
       m = 0 }

  /* -- a worker's graceful stop: hand back what no thread began, finish, close -- */
  :: atomic { worker && stage == 0 && tpc == T_IDLE -> stage = 1 }
  :: atomic { stage == 1 ->                         /* hand_back.lua: started, not begun */
       m = 0;
       do
       :: m < NM ->
          if
          :: G(c, m) == G_READY && loc[m] == PROC(c) -> out(m); put(m, QUEUE)
          :: else
          fi;
          if :: G(c, m) == G_READY || G(c, m) == G_WAITING -> G(c, m) = G_NONE :: else fi;
          m++
       :: else -> break
       od;
       m = 0; stage = 2 }
  :: atomic { stage == 2 ->                         /* release.lua, a chunk a call */
       PICK(PRE(c), m);
       if
       :: m != NONE -> out(m);
#ifdef MUTANT_RESET_COUNT
          count(m, 0);                              /* a fresh count, as revive.lua writes */
#endif
          put(m, QUEUE)
       :: else -> stage = 3
       fi;
       m = 0 }
  :: atomic { stage == 3 && !ANY(held, c) && dup[c] == 0 -> stage = 4 }   /* in-flight all settled */

  /* -- close: a consumer's own, or the end of a worker's stop -- */
  :: atomic { !worker && stage == 0 && tpc == T_IDLE -> stage = 4 }
  :: atomic { stage == 4 ->                         /* recover.lua "close", a chunk a call */
       recover(c, 0, st, m);
       if :: st != 2 -> goto gone :: else fi;
       st = 0 }
  od;

crash:
  atomic {
    m = 0;
    do :: m < NM -> G(c, m) = G_NONE; GD(c, m) = 0; m++ :: else -> break od;
    recon[c] = 0; dup[c] = 0; m = 0; got = 0; into = 0; n = 0; k = 0; st = 0; d = 0; tpc = 0;
    fault = 0; stage = 0; unkp = 0; unkq = 0; started = 0;
    if
    :: c == C && lives > 1 -> lives--; goto start  /* a successor of the same id */
    :: true
    fi
  };
gone:
  atomic {
    m = 0;
    do :: m < NM -> G(c, m) = G_NONE; GD(c, m) = 0; m++ :: else -> break od;
    recon[c] = 0; dup[c] = 0; m = 0; st = 0; stage = 0; tpc = 0;
    ended[c] = 1
  }
}

/* The clock: every deadline comes one tick nearer. */
active proctype Clock() {
  byte c;
end:
  do
  :: atomic { !over ->
       c = 0;
       do :: c < NC -> if :: rem[c] > 0 -> rem[c]-- :: else fi; c++ :: else -> break od;
       c = 0 }
  od
}

/* The garbage collector: expired.lua lists who is past its deadline; recover.lua reaps
   each, a chunk a call, checking the deadline again; requeue_unack.lua; promote.lua
   (a retry's delay is abstracted: any delayed message may come due). It may stop at any
   point (it died, or a step failed) and start a fresh pass. */
active proctype GC() {
  byte c, m, st, listed;
end:
  do
  :: atomic { !over && listed == 0 ->                /* expired.lua */
       listed = ((reg[0] && rem[0] == 0) -> BIT(0) : 0) | ((reg[1] && rem[1] == 0) -> BIT(1) : 0) }
  :: atomic { listed != 0 ->                         /* recover.lua "reap", a chunk */
       if :: listed & BIT(0) -> c = 0 :: listed & BIT(1) -> c = 1 fi;
       recover(c, 1, st, m);
       if :: st != 2 -> listed = listed & ~BIT(c) :: else fi;
       c = 0; st = 0 }
  :: atomic { listed != 0 -> listed = 0 }            /* stops mid-pass: died, or failed */
  :: atomic { !over ->                               /* requeue_unack.lua */
       PICK(UNACK, m);
       if :: m != NONE -> out(m); oz_return(m) :: else fi;
       m = 0 }
  :: atomic { !over ->                               /* promote.lua */
       PICK(DELAYED, m);
       if :: m != NONE -> out(m); put(m, QUEUE) :: else fi;
       m = 0 }
  od
}

/* Once no client runs, every deadline passes and the GC does all it can (its fairness).
   "No strand": then no message is left in a consumer's lists, unacked or delayed. */
active proctype Finale() {
  byte c, m, st;
  (ended[W] && ended[C]);
  atomic {
    over = 1;
    do
    :: c < NC ->
       rem[c] = 0;
       do
       :: reg[c] -> recover(c, 1, st, m)
       :: else -> break
       od;
       c++
    :: else -> break
    od;
    do
    :: m < NM ->
       if :: loc[m] == UNACK -> out(m); oz_return(m) :: else fi;
       if :: loc[m] == DELAYED -> out(m); put(m, QUEUE) :: else fi;
       assert(loc[m] == QUEUE || loc[m] == DEAD || loc[m] == ACKED || loc[m] == OTHER);
       m++
    :: else -> break
    od
  }
}

init {
  byte m;
  atomic {
    do :: m < NM -> loc[m] = QUEUE; m++ :: else -> break od;   /* all pushed: waiting */
    m = 0;
#if WORKER
    run Client(W, 1);
#else
    ended[W] = 1;
#endif
#if CONSUMER
    run Client(C, 0)
#else
    ended[C] = 1
#endif
  }
}
