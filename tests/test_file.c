/*
 * test_file.c - atomic writes (io/file.h): the target is replaced whole or
 * not at all, temporary files are named, cleaned up and never loaded, write
 * errors name the file and their reason, links and devices are respected.
 *
 * The write errors are real ones: a file-size limit (RLIMIT_FSIZE, SIGXFSZ
 * ignored) fails the writes with EFBIG, /dev/full with ENOSPC, and a folder
 * whose path goes through a regular file with ENOTDIR (which stops root
 * too; a chmod'ed folder is tried only when not running as root).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/file.h"
#include "resnet.h"
#include "check.h"

static char dir[256];

static void path_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Number of entries of the test folder whose name is a temporary file's. */
static int count_temps(void) { return check_count_files(dir, rn_file_is_temp); }

static int file_equals(const char *path, const char *text) {
    size_t len;
    unsigned char *buf = check_read_file(path, &len);
    int same = buf && len == strlen(text) && memcmp(buf, text, len) == 0;
    free(buf);
    return same;
}

static void test_names(void) {
    CHECK(rn_file_is_temp(".run.safetensors.tmp-1234-ab12cd"), "a temporary name is recognised");
    CHECK(rn_file_is_temp("/a/b/.x.tmp-1-zzzzzz"), "with a folder");
    CHECK(!rn_file_is_temp("run.safetensors"), "a plain name is not a temporary one");
    CHECK(!rn_file_is_temp(".x.tmp-12-abc"), "the random part has 6 characters");
    CHECK(!rn_file_is_temp(".x.tmp--abcdef"), "a pid is needed");
    CHECK(!rn_file_is_temp("x.tmp-12-abcdef"), "the name starts with a dot");
    CHECK(!rn_file_is_temp(".tmp-12-abcdef"), "a target name is needed");
}

static void test_replace(void) {
    char p[512];
    path_of(p, sizeof p, "a.txt");
    CHECK(rn_file_write_all(p, "first", 5) == RN_OK, "write a new file: %s", rn_last_error());
    CHECK(file_equals(p, "first"), "new file has its contents");
    chmod(p, 0640);
    rn_wfile w;
    CHECK(rn_wfile_open(&w, p) == RN_OK, "open over an existing file: %s", rn_last_error());
    fputs("second, longer", w.f);
    CHECK(count_temps() == 1 && rn_file_is_temp(w.tmp), "one temporary file while writing: %s", w.tmp);
    CHECK(file_equals(p, "first"), "the target is untouched until the commit");
    FILE *f;
    size_t size;
    CHECK(rn_file_open(w.tmp, &f, &size) == RN_ERR_IO && strstr(rn_last_error(), "never loaded"),
          "a temporary file is refused by the readers: %s", rn_last_error());
    CHECK(rn_wfile_stage(&w) == RN_OK, "stage: %s", rn_last_error());
    CHECK(file_equals(p, "first"), "staging does not replace the target");
    CHECK(rn_wfile_commit(&w) == RN_OK, "commit: %s", rn_last_error());
    CHECK(file_equals(p, "second, longer"), "the commit replaces the target");
    CHECK(count_temps() == 0, "no temporary file after the commit");
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0640, "the replaced file keeps its mode (%o)",
          (unsigned)(sb.st_mode & 0777));

    CHECK(rn_wfile_open(&w, p) == RN_OK, "open again");
    fputs("abandoned", w.f);
    rn_wfile_discard(&w);
    CHECK(file_equals(p, "second, longer") && count_temps() == 0, "discard leaves the target and no temporary");
}

static void test_stale(void) {
    char p[512], dead[600], live[600];
    path_of(p, sizeof p, "b.bin");
    /* a process that is gone, and one that is alive (init, pid 1) */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    snprintf(dead, sizeof dead, "%s/.b.bin.tmp-%ld-abcdef", dir, (long)child);
    snprintf(live, sizeof live, "%s/.b.bin.tmp-1-abcdef", dir);
    CHECK(check_write_file(dead, "partial", 7) && check_write_file(live, "partial", 7), "make stale files");
    CHECK(rn_file_write_all(p, "x", 1) == RN_OK, "write: %s", rn_last_error());
    CHECK(access(dead, F_OK) != 0, "a dead process's temporary file is removed");
    CHECK(access(live, F_OK) == 0, "a live process's temporary file is left alone");
    unlink(live);
}

static void test_link_and_device(void) {
    char target[512], link[512];
    path_of(target, sizeof target, "real.txt");
    path_of(link, sizeof link, "link.txt");
    CHECK(check_write_file(target, "old", 3) && symlink("real.txt", link) == 0, "make a link");
    CHECK(rn_file_write_all(link, "new", 3) == RN_OK, "write through a link: %s", rn_last_error());
    struct stat sb;
    CHECK(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode), "the link stays a link");
    CHECK(file_equals(target, "new"), "the file it points to is replaced");
    CHECK(rn_file_write_all("/dev/null", "data", 4) == RN_OK, "write to /dev/null: %s", rn_last_error());
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode), "/dev/null is still a device");
    if (access("/dev/full", W_OK) == 0) {
        char big[1 << 16] = {0};
        CHECK(rn_file_write_all("/dev/full", big, sizeof big) == RN_ERR_IO &&
                  strstr(rn_last_error(), "/dev/full") && strstr(rn_last_error(), strerror(ENOSPC)),
              "a full device: %s", rn_last_error());
    }
}

static void test_errors(void) {
    char p[512], blocker[512], inside[600];
    path_of(p, sizeof p, "c.bin");
    CHECK(rn_file_write_all(p, "kept", 4) == RN_OK, "write");
    /* EFBIG under a file-size limit, in a child so the limit goes with it */
    pid_t child = fork();
    if (child == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &lim);
        static char big[1 << 20];
        rn_status st = rn_file_write_all(p, big, sizeof big);
        int named = strstr(rn_last_error(), p) && strstr(rn_last_error(), strerror(EFBIG));
        _exit(st == RN_ERR_IO && named ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a write over the file-size limit fails naming the file");
    CHECK(file_equals(p, "kept") && count_temps() == 0, "after the failure: old contents, no temporary");

    path_of(blocker, sizeof blocker, "not_a_folder");
    snprintf(inside, sizeof inside, "%s/x.bin", blocker);
    CHECK(check_write_file(blocker, "", 0), "make a file");
    CHECK(rn_file_write_all(inside, "x", 1) == RN_ERR_IO && strstr(rn_last_error(), inside),
          "a folder that cannot hold files: %s", rn_last_error());
    CHECK(rn_file_write_all(dir, "x", 1) == RN_ERR_IO, "a folder as target: %s", rn_last_error());
    if (geteuid() != 0) {
        char ro[512], f[600];
        path_of(ro, sizeof ro, "ro");
        snprintf(f, sizeof f, "%s/y.bin", ro);
        mkdir(ro, 0755);
        CHECK(rn_file_write_all(f, "before", 6) == RN_OK, "write before chmod");
        chmod(ro, 0555);
        CHECK(rn_file_write_all(f, "after", 5) == RN_ERR_IO && strstr(rn_last_error(), strerror(EACCES)),
              "a read-only folder: %s", rn_last_error());
        CHECK(file_equals(f, "before"), "the file in the read-only folder is unchanged");
        chmod(ro, 0755);
    }
}

int main(void) {
    if (!check_tmpdir("test_file", dir, sizeof dir))
        return 1;
    test_names();
    test_replace();
    test_stale();
    test_link_and_device();
    test_errors();
    check_tmpdir_remove(dir);
    return check_done("test_file");
}
