// Reads the calling thread's Perl stack from the interpreter's own structures,
// as caller() would report it, without running Perl: no Perl function is
// called (several can croak, allocate on Perl's heap or run magic), only
// memory is read. Compiled against the installed perl's CORE headers (the
// layout of `struct interpreter` and of the context stack is version- and
// configuration-specific); used only when the running perl is that exact
// version with the same binary-compatibility options (runtime_matches()).
//
// Safety: the hooked call (mysql_real_connect, PQconnectdb, their closes) is
// made by the Perl thread itself from inside an XS function, so the
// interpreter is paused in a consistent state for this thread. Every walk is
// bounded and every pointer checked for null and for the type it should have.
#include <dlfcn.h>
#include <pthread.h>

#include <cstring>

#include "shim/perl/perl_frames.h"
#include "shim/runtime/api_once.h"
#include "shim/runtime/guard.h"

// Perl's headers last: they define hundreds of macros.
#include <EXTERN.h>
#include <perl.h>

namespace connleak::shim::perl {

namespace {

// PL_bincompat_options as these headers spell it (generated at configure time
// from perl.h's own #ifdef list, see perl.cmake), to compare with the running
// perl's copy.
const char kBincompatOptions[] =
#include "perl_bincompat.inc"
    ;

// Bounds on the walk: no real program nests deeper, a corrupt one stops here.
constexpr int kMaxStackInfos = 256;
constexpr I32 kMaxContexts = 1 << 20;
constexpr STRLEN kMaxName = 1024;

struct Runtime {
  pthread_key_t* thr_key = nullptr;
};

// The perl this reader was compiled for, exactly, or nothing: dlsym only,
// nothing allocated on Perl's heap.
bool fill(Runtime& r) {
  const U8* revision = nullptr;
  const U8* version = nullptr;
  const U8* subversion = nullptr;
  const char* options = nullptr;
  // Only an ithreads perl has the key; another configuration is skipped.
  return load_symbol(revision, "PL_revision") && load_symbol(version, "PL_version") &&
         load_symbol(subversion, "PL_subversion") && load_symbol(options, "PL_bincompat_options") &&
         *revision == PERL_REVISION && *version == PERL_VERSION && *subversion == PERL_SUBVERSION &&
         std::strcmp(options, kBincompatOptions) == 0 && load_symbol(r.thr_key, "PL_thr_key");
}
constinit ApiOnce<Runtime> g_runtime{fill};

}  // namespace

bool runtime_matches() {
  return g_runtime.get() != nullptr;
}

namespace {

bool name_of_hek(const HEK* hek, const char** s, std::uint32_t* len) {
  if (!hek || HEK_LEN(hek) <= 0 || static_cast<STRLEN>(HEK_LEN(hek)) > kMaxName) return false;
  *s = HEK_KEY(hek);
  *len = static_cast<std::uint32_t>(HEK_LEN(hek));
  return true;
}

// A stash's name (HvNAME_get, checked step by step).
bool stash_name(HV* stash, const char** s, std::uint32_t* len) {
  if (!stash || SvTYPE(stash) != SVt_PVHV || !SvOOK(stash)) return false;
  if (!HvAUX(stash)->xhv_name_u.xhvnameu_name) return false;
  return name_of_hek(HvNAME_HEK_NN(stash), s, len);
}

// The sub's package and name, as caller() prints them (Package::name); what
// CvGV would give, but without Perl_cvgv_from_hek, which makes a GV for a
// sub known by name only (lexical subs).
void sub_name(CV* cv, RawFrame* f) {
  static const char kAnon[] = "__ANON__";
  f->name = kAnon;
  f->name_len = sizeof(kAnon) - 1;
  if (!cv || SvTYPE(cv) != SVt_PVCV) return;
  if (CvNAMED(cv)) {
    name_of_hek(CvNAME_HEK(cv), &f->name, &f->name_len);
    stash_name(CvSTASH(cv), &f->package, &f->package_len);
    return;
  }
  GV* gv = ((XPVCV*)MUTABLE_PTR(SvANY(cv)))->xcv_gv_u.xcv_gv;
  if (!gv || !isGV_with_GP(gv)) return;
  name_of_hek(GvXPVGV(gv)->xiv_u.xivu_namehek, &f->name, &f->name_len);
  stash_name(GvXPVGV(gv)->xnv_u.xgv_stash, &f->package, &f->package_len);
}

void at_cop(const COP* cop, RawFrame* f) {
  f->file = CopFILE(cop);
  f->line = static_cast<int>(CopLINE(cop));
}

}  // namespace

int read_frames(RawFrame* out, int max) {
  const Runtime* rt = g_runtime.get();
  if (!rt || max <= 0) return 0;
  // PERL_GET_CONTEXT: this thread's interpreter (Perl sets the key and its
  // thread-local copy together).
  auto* my_perl = static_cast<PerlInterpreter*>(pthread_getspecific(*rt->thr_key));
  if (!my_perl) return 0;
  // Starting up (structures still being built) or in global destruction
  // (being torn down; closes then are runtime_exit and need no Perl stack).
  if (PL_phase == PERL_PHASE_CONSTRUCT || PL_phase == PERL_PHASE_DESTRUCT) return 0;
  // Consistency of the first fields of the interpreter: with a layout other
  // than the one compiled in, these would not agree.
  PERL_SI* si = PL_curstackinfo;
  if (!si || !PL_curstack || si->si_stack != PL_curstack || !PL_curcop) return 0;
  if (PL_stack_base != AvARRAY(PL_curstack)) return 0;

  CV* db_sub = nullptr;  // the debugger's DB::sub, whose frames caller() hides
  if (PL_DBsub && isGV_with_GP(PL_DBsub) && GvGP(PL_DBsub)) db_sub = GvCV(PL_DBsub);

  const COP* cop = PL_curcop;
  int n = 0;
  for (int hops = 0; si && hops < kMaxStackInfos && n < max; ++hops, si = si->si_prev) {
    const I32 top = si->si_cxix;
    if (top > si->si_cxmax || si->si_cxmax > kMaxContexts || (top >= 0 && !si->si_cxstack))
      return 0;
    for (I32 i = top; i >= 0 && n < max; --i) {
      const PERL_CONTEXT* cx = &si->si_cxstack[i];
      const U8 type = CxTYPE(cx);
      if (type != CXt_SUB && type != CXt_FORMAT && type != CXt_EVAL) continue;
      if (type == CXt_SUB && db_sub && cx->blk_sub.cv == db_sub) {
        cop = cx->blk_oldcop;  // the sub DB::sub ran was called from there
        continue;
      }
      if (!cop) return n;
      RawFrame& f = out[n];
      f = RawFrame{};
      at_cop(cop, &f);
      if (type == CXt_EVAL) {
        static const char kEval[] = "(eval)";
        f.name = kEval;
        f.name_len = sizeof(kEval) - 1;
      } else {
        sub_name(cx->blk_sub.cv, &f);
      }
      ++n;
      cop = cx->blk_oldcop;  // where that sub was called: the next frame's line
    }
  }
  if (cop && n < max) {
    static const char kMain[] = "<main>";
    RawFrame& f = out[n++];
    f = RawFrame{};
    at_cop(cop, &f);
    f.name = kMain;
    f.name_len = sizeof(kMain) - 1;
  }
  return n;
}

}  // namespace connleak::shim::perl
