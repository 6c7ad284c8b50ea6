/* trust-pkey.c - decoded DKIM public keys kept for the run: see trust-pkey.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* dlinfo() */
#endif
#include "trust-pkey.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

/* libcrypto's functions, from libopendkim's own scope (libcrypto is not linked: it is
 * loaded with libopendkim). */
static struct {
  EVP_PKEY *(*d2i_PUBKEY_bio)(BIO *bp, EVP_PKEY **a);
  long (*BIO_ctrl)(BIO *bp, int cmd, long larg, void *parg);
  int (*BIO_read)(BIO *b, void *data, int dlen);
  int (*BIO_method_type)(const BIO *b);
  int (*EVP_PKEY_up_ref)(EVP_PKEY *key);
  void (*EVP_PKEY_free)(EVP_PKEY *key);
} trust_pk;

typedef struct {
  EVP_PKEY *pkey;             /* one reference is the cache's */
  long consumed;              /* bytes the decoding read from the BIO */
} TrustPkeyEntry;

/* A pthread mutex rather than a GMutex: GLib's is a bare futex on Linux, which
 * ThreadSanitizer and helgrind cannot see, and this lock is what makes the cache safe
 * for the parse workers. */
static pthread_mutex_t trust_pk_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *trust_pk_cache;      /* GBytes (the DER bytes) -> TrustPkeyEntry */
static guint trust_pk_decoded, trust_pk_reused;

static void
trust_pkey_entry_free(TrustPkeyEntry *e)
{
  trust_pk.EVP_PKEY_free(e->pkey);
  g_free(e);
}

/* Longer DER than this is no DKIM key anyone publishes (RSA-8192 is 1,062 bytes): such
 * input goes to the real function, uncached. */
#define TRUST_PKEY_DER_MAX 4096

/* What libopendkim calls instead of d2i_PUBKEY_bio(). The decoded key is a function of
 * the bytes alone, so the same bytes give the same key whoever publishes them; the
 * caller gets its own reference and frees it as before. libopendkim only reads the key
 * (EVP_PKEY_get1_RSA, RSA_verify, EVP_DigestVerify): OpenSSL allows that from several
 * threads at once. */
static EVP_PKEY *
trust_pkey_d2i(BIO *bio, EVP_PKEY **out)
{
  char *data = NULL;
  long n = -1;
  if (out == NULL && bio != NULL && trust_pk.BIO_method_type(bio) == BIO_TYPE_MEM)
    n = trust_pk.BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data);
  if (n <= 0 || n > TRUST_PKEY_DER_MAX || data == NULL)
    return trust_pk.d2i_PUBKEY_bio(bio, out);

  g_autoptr(GBytes) der = g_bytes_new(data, (gsize) n);
  pthread_mutex_lock(&trust_pk_lock);
  TrustPkeyEntry *e = trust_pk_cache != NULL ? g_hash_table_lookup(trust_pk_cache, der) : NULL;
  if (e != NULL && trust_pk.EVP_PKEY_up_ref(e->pkey) == 1) {
    EVP_PKEY *pkey = e->pkey;
    long consumed = e->consumed;
    trust_pk_reused++;
    pthread_mutex_unlock(&trust_pk_lock);
    /* Leave the BIO as the decoding would have: past the key's bytes. */
    char skip[512];
    while (consumed > 0) {
      int r = trust_pk.BIO_read(bio, skip, (int) MIN(consumed, (long) sizeof skip));
      if (r <= 0)
        break;
      consumed -= r;
    }
    return pkey;
  }
  pthread_mutex_unlock(&trust_pk_lock);

  EVP_PKEY *pkey = trust_pk.d2i_PUBKEY_bio(bio, NULL);
  if (pkey == NULL)
    return NULL;                /* not a key: nothing kept, the library says why */
  long rest = trust_pk.BIO_ctrl(bio, BIO_CTRL_PENDING, 0, NULL);
  pthread_mutex_lock(&trust_pk_lock);
  trust_pk_decoded++;
  if (trust_pk_cache == NULL)
    trust_pk_cache = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                           (GDestroyNotify) g_bytes_unref,
                                           (GDestroyNotify) trust_pkey_entry_free);
  if (g_hash_table_size(trust_pk_cache) >= TRUST_PKEY_CACHE_MAX)
    g_hash_table_remove_all(trust_pk_cache);
  if (!g_hash_table_contains(trust_pk_cache, der) && trust_pk.EVP_PKEY_up_ref(pkey) == 1) {
    TrustPkeyEntry *ne = g_new0(TrustPkeyEntry, 1);
    ne->pkey = pkey;
    ne->consumed = rest >= 0 && rest <= n ? n - rest : n;
    g_hash_table_insert(trust_pk_cache, g_bytes_ref(der), ne);
  }
  pthread_mutex_unlock(&trust_pk_lock);
  return pkey;
}

void
trust_pkey_cache_stats(guint *decoded, guint *reused)
{
  pthread_mutex_lock(&trust_pk_lock);
  *decoded = trust_pk_decoded;
  *reused = trust_pk_reused;
  pthread_mutex_unlock(&trust_pk_lock);
}

/* ---- the redirection ------------------------------------------------------------- */

#if __SIZEOF_POINTER__ == 8
#define TRUST_PKEY_R_SYM(info) ELF64_R_SYM(info)
#else
#define TRUST_PKEY_R_SYM(info) ELF32_R_SYM(info)
#endif

typedef struct {
  ElfW(Addr) base;
  ElfW(Addr) relro_start, relro_end;    /* 0, 0: no PT_GNU_RELRO */
  gboolean found;
} TrustPkeyRelro;

static int
trust_pkey_find_relro(struct dl_phdr_info *info, size_t size, void *data)
{
  (void) size;
  TrustPkeyRelro *r = data;
  if (info->dlpi_addr != r->base)
    return 0;
  r->found = TRUE;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO) {
      r->relro_start = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
      r->relro_end = r->relro_start + info->dlpi_phdr[i].p_memsz;
    }
  return 1;
}

/* The address of a dynamic-section pointer: glibc relocates them in place, other
 * loaders leave them relative to the base. */
static const void *
trust_pkey_dyn_ptr(ElfW(Addr) base, ElfW(Addr) value)
{
  return (const void *) (value < base ? base + value : value);
}

/* The GOT slot of libopendkim through which it calls @symbol, which must hold @real
 * (bound at load: libopendkim is opened RTLD_NOW, and Debian builds it -z now). */
static void **
trust_pkey_slot(const struct link_map *lm, const char *symbol, void *real, char **why)
{
  const ElfW(Sym) *symtab = NULL;
  const char *strtab = NULL;
  const ElfW(Rela) *tables[2] = { NULL, NULL };
  gsize sizes[2] = { 0, 0 };
  ElfW(Sxword) pltrel = DT_RELA;
  for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
    switch (d->d_tag) {
    case DT_SYMTAB: symtab = trust_pkey_dyn_ptr(lm->l_addr, d->d_un.d_ptr); break;
    case DT_STRTAB: strtab = trust_pkey_dyn_ptr(lm->l_addr, d->d_un.d_ptr); break;
    case DT_JMPREL: tables[0] = trust_pkey_dyn_ptr(lm->l_addr, d->d_un.d_ptr); break;
    case DT_PLTRELSZ: sizes[0] = d->d_un.d_val; break;
    case DT_PLTREL: pltrel = (ElfW(Sxword)) d->d_un.d_val; break;
    case DT_RELA: tables[1] = trust_pkey_dyn_ptr(lm->l_addr, d->d_un.d_ptr); break;
    case DT_RELASZ: sizes[1] = d->d_un.d_val; break;
    default: break;
    }
  }
  if (symtab == NULL || strtab == NULL || pltrel != DT_RELA) {
    *why = g_strdup("no RELA relocations with a symbol table");
    return NULL;
  }
  for (int t = 0; t < 2; t++) {
    if (tables[t] == NULL)
      continue;
    for (gsize i = 0; i < sizes[t] / sizeof(ElfW(Rela)); i++) {
      const ElfW(Rela) *r = &tables[t][i];
      gsize sym = TRUST_PKEY_R_SYM(r->r_info);
      if (sym == 0 || strcmp(strtab + symtab[sym].st_name, symbol) != 0)
        continue;
      void **slot = (void **) (lm->l_addr + r->r_offset);
      if (*slot == real)
        return slot;
    }
  }
  *why = g_strdup_printf("no bound import of %s", symbol);
  return NULL;
}

gboolean
trust_pkey_cache_install(void *handle, char **why)
{
  *why = NULL;
  static const char *const names[] = { "d2i_PUBKEY_bio", "BIO_ctrl", "BIO_read",
                                       "BIO_method_type", "EVP_PKEY_up_ref",
                                       "EVP_PKEY_free" };
  void **fns = (void **) &trust_pk;
  G_STATIC_ASSERT(sizeof trust_pk == G_N_ELEMENTS(names) * sizeof(void *));
  for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
    fns[i] = dlsym(handle, names[i]);
    if (fns[i] == NULL) {
      *why = g_strdup_printf("no symbol %s", names[i]);
      return FALSE;
    }
  }
  struct link_map *lm = NULL;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL) {
    *why = g_strdup("dlinfo() failed");
    return FALSE;
  }
  void **slot = trust_pkey_slot(lm, "d2i_PUBKEY_bio", (void *) trust_pk.d2i_PUBKEY_bio, why);
  if (slot == NULL)
    return FALSE;

  /* The slot is read-only after loading (RELRO): writable for the one store, then
   * read-only again. */
  TrustPkeyRelro relro = { lm->l_addr, 0, 0, FALSE };
  dl_iterate_phdr(trust_pkey_find_relro, &relro);
  long page = sysconf(_SC_PAGESIZE);
  if (!relro.found || page <= 0) {
    *why = g_strdup("libopendkim not among the loaded objects");
    return FALSE;
  }
  ElfW(Addr) at = (ElfW(Addr)) slot;
  gboolean in_relro = at >= relro.relro_start && at + sizeof(void *) <= relro.relro_end;
  void *start = (void *) (at & ~((ElfW(Addr)) page - 1));
  if (in_relro && mprotect(start, (size_t) page, PROT_READ | PROT_WRITE) != 0) {
    *why = g_strdup_printf("mprotect: %s", g_strerror(errno));
    return FALSE;
  }
  __atomic_store_n(slot, (void *) trust_pkey_d2i, __ATOMIC_SEQ_CST);
  if (in_relro)
    (void) mprotect(start, (size_t) page, PROT_READ);
  return TRUE;
}
