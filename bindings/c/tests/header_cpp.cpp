// nami.h from C++ (native Windows POS applications are often C++): the header compiles as C++11
// with -Wall -Wextra -Werror -pedantic, its functions link with C names (extern "C"), NamiStatus
// is a 32-bit enum there as it is on the wire, and a REGISTER and a PURCHASE go through against
// nami-sim. Prints "N passed, N failed".
//
//   header_cpp PORT CASH_REGISTER_NO

#include "nami.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

static_assert(sizeof(NamiStatus) == sizeof(std::int32_t), "NamiStatus is an int32_t on the wire");
static_assert(std::is_same<std::underlying_type<NamiStatus>::type, std::int32_t>::value,
              "NamiStatus's underlying type");

namespace {

int passed = 0, failed = 0;

void check(bool ok, const char *what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        const char *error = nami_last_error_message();
        std::fprintf(stderr, "FAIL %s (last error: %s)\n", what, error ? error : "(none)");
    }
}

bool equals(const char *text, const char *expected) { return text != nullptr && std::strcmp(text, expected) == 0; }

// A NamiResult that frees itself, as a C++ caller would wrap it.
struct Result {
    NamiResult raw;
    Result() { std::memset(&raw, 0, sizeof raw); }
    ~Result() { nami_result_free(&raw); }
    Result(const Result &) = delete;
    Result &operator=(const Result &) = delete;
};

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: header_cpp PORT CASH_REGISTER_NO\n");
        return 2;
    }
    const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    const std::string register_no = argv[2];

    check(nami_version() != nullptr && std::strlen(nami_version()) > 0, "nami_version");
    check(nami_abi_version() >= 1, "nami_abi_version");

    NamiTerminal *terminal = nullptr;
    check(nami_terminal_tcp_new("127.0.0.1", port, nullptr, &terminal) == NAMI_STATUS_OK && terminal != nullptr,
          "nami_terminal_tcp_new");
    {
        Result registered;
        check(nami_terminal_register(terminal, register_no.c_str(), &registered.raw) == NAMI_STATUS_OK,
              "REGISTER answered");
        check(equals(registered.raw.response_code, "800"), "REGISTER's response code is 800");
    }
    {
        Result bought;
        const std::string reference = register_no + "000001";
        check(nami_terminal_purchase(terminal, "10.00", reference.c_str(), 1, &bought.raw) == NAMI_STATUS_OK,
              "PURCHASE answered");
        check(bought.raw.approved == 1 && equals(bought.raw.response_code, "000"), "PURCHASE approved");
        check(equals(bought.raw.ecr_reference, reference.c_str()), "PURCHASE's ECR reference echoed");
    }
    {
        // Bad input is a status and a named field, never an exception or a crash.
        Result refused;
        const NamiStatus status = nami_terminal_purchase(terminal, "10.001", "12345678000002", 1, &refused.raw);
        check(status == NAMI_STATUS_INVALID_AMOUNT, "a three-decimal amount is refused");
        check(equals(nami_last_error_field(), "amount"), "the refusal names the field");
    }
    nami_terminal_free(terminal);

    std::printf("header_cpp: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
