/* floor-dkim.c - the lower bound of DKIM verification for the benchmark: its bare
 * cryptography, nothing else.
 *
 *   floor-dkim [--threads N] PRIVATE-KEY.pem MAILDIR
 *
 * Reads every message of MAILDIR/new and MAILDIR/cur into memory, then, on N threads
 * (default 2, the parse workers' count on this machine), does for each message what any
 * verifier of one RSA-SHA256 signature must: SHA-256 of its header block and of its
 * body (the bytes as they are: no canonicalization), and one RSA-2048 PKCS#1 v1.5
 * verification with a key decoded once before (the public half of PRIVATE-KEY, the
 * benchmark's signing key; the signature is one made of a fixed digest, so every
 * verification does the same modular exponentiation a real one does, and passes).
 * No header parsing, no key lookup, no canonicalization: whatever a real verifier adds
 * is above this floor.
 *
 * Prints one line: messages=N bytes=B verified=V crypto_wall=S crypto_cpu=S (the time
 * of the cryptography alone, reading excluded; CPU = user + system of the process). */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

typedef struct {
  unsigned char *data;
  size_t len;
} Msg;

static Msg *msgs;
static size_t n_msgs, cap_msgs, n_bytes;
static EVP_PKEY *pub;
static unsigned char sig[1024], fixed_digest[SHA256_DIGEST_LENGTH];
static size_t sig_len;

static void
read_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
      continue;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
      fclose(f);
      continue;
    }
    if (n_msgs == cap_msgs) {
      cap_msgs = cap_msgs ? cap_msgs * 2 : 16384;
      msgs = realloc(msgs, cap_msgs * sizeof *msgs);
      if (msgs == NULL)
        abort();
    }
    Msg *m = &msgs[n_msgs];
    m->len = (size_t) st.st_size;
    m->data = malloc(m->len + 1);
    if (m->data == NULL || fread(m->data, 1, m->len, f) != m->len) {
      fclose(f);
      free(m->data);
      continue;
    }
    fclose(f);
    n_bytes += m->len;
    n_msgs++;
  }
  closedir(d);
}

typedef struct {
  size_t from, to, verified;
} Slice;

static void *
work(void *arg)
{
  Slice *s = arg;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
  for (size_t i = s->from; i < s->to; i++) {
    const unsigned char *p = msgs[i].data;
    size_t len = msgs[i].len, split = len;
    for (size_t k = 0; k + 1 < len; k++)
      if (p[k] == '\n' && (p[k + 1] == '\n' || (k + 2 < len && p[k + 1] == '\r' && p[k + 2] == '\n'))) {
        split = k + 1;
        break;
      }
    unsigned char h[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256(p, split, h);
    SHA256(p + split, len - split, b);
    if (EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_verify(ctx, sig, sig_len, fixed_digest, sizeof fixed_digest) == 1 &&
        h[0] != b[0] + 256)             /* the hashes are used */
      s->verified++;
  }
  EVP_PKEY_CTX_free(ctx);
  return NULL;
}

static double
now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double
cpu(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
         (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
  int threads = 2, a = 1;
  if (argc > 2 && strcmp(argv[1], "--threads") == 0) {
    threads = atoi(argv[2]);
    a = 3;
  }
  if (argc - a != 2 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: floor-dkim [--threads N] PRIVATE-KEY.pem MAILDIR\n");
    return 2;
  }
  FILE *kf = fopen(argv[a], "r");
  EVP_PKEY *priv = kf != NULL ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
  if (kf != NULL)
    fclose(kf);
  if (priv == NULL) {
    fprintf(stderr, "floor-dkim: cannot read the private key %s\n", argv[a]);
    return 1;
  }
  /* The public key, decoded once (as a cache would hold it). */
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY(priv, &der);
  const unsigned char *dp = der;
  pub = der_len > 0 ? d2i_PUBKEY(NULL, &dp, der_len) : NULL;
  SHA256((const unsigned char *) "floor", 5, fixed_digest);
  EVP_PKEY_CTX *sctx = EVP_PKEY_CTX_new(priv, NULL);
  sig_len = sizeof sig;
  if (pub == NULL || sctx == NULL || EVP_PKEY_sign_init(sctx) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(sctx, RSA_PKCS1_PADDING) != 1 ||
      EVP_PKEY_CTX_set_signature_md(sctx, EVP_sha256()) != 1 ||
      EVP_PKEY_sign(sctx, sig, &sig_len, fixed_digest, sizeof fixed_digest) != 1) {
    fprintf(stderr, "floor-dkim: cannot sign with %s\n", argv[a]);
    return 1;
  }
  EVP_PKEY_CTX_free(sctx);
  OPENSSL_free(der);

  char dir[4096];
  snprintf(dir, sizeof dir, "%s/new", argv[a + 1]);
  read_dir(dir);
  snprintf(dir, sizeof dir, "%s/cur", argv[a + 1]);
  read_dir(dir);

  double w0 = now(), c0 = cpu();
  pthread_t t[64];
  Slice s[64];
  for (int i = 0; i < threads; i++) {
    s[i] = (Slice) { n_msgs * (size_t) i / (size_t) threads,
                     n_msgs * (size_t) (i + 1) / (size_t) threads, 0 };
    pthread_create(&t[i], NULL, work, &s[i]);
  }
  size_t verified = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    verified += s[i].verified;
  }
  double w1 = now(), c1 = cpu();
  printf("messages=%zu bytes=%zu verified=%zu crypto_wall=%.6f crypto_cpu=%.6f\n", n_msgs,
         n_bytes, verified, w1 - w0, c1 - c0);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(priv);
  return verified == n_msgs && n_msgs > 0 ? 0 : 1;
}
