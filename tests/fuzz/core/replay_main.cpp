// A main() for the fuzz harnesses without libFuzzer: runs LLVMFuzzerTestOneInput on every file named on the
// command line (directories: every file in them, sorted). Used to replay the seed corpus and the regression
// cases with g++ builds (the sanitizer run, the ARM builds under qemu). Prints "<target>: N inputs" and
// returns non-zero only if a harness aborts (which a sanitizer or an uncaught exception does).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/stat.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

static void collect(const std::string& path, std::vector<std::string>& files) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return;
    if (!S_ISDIR(st.st_mode)) {
        files.push_back(path);
        return;
    }
    DIR* d = opendir(path.c_str());
    if (!d) return;
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    const int err = errno;
    closedir(d);
    if (err) {  // e.g. EOVERFLOW: 32-bit readdir without _FILE_OFFSET_BITS=64 under qemu on a 64-bit host
        std::fprintf(stderr, "cannot list %s: %s\n", path.c_str(), std::strerror(err));
        std::exit(2);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) collect(path + "/" + n, files);
}

int main(int argc, char** argv) {
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) collect(argv[i], files);
    for (const auto& f : files) {
        std::ifstream s(f, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("%s: %zu inputs\n", argv[0], files.size());
    return files.empty() ? 2 : 0;
}
