# tools/package: installing a participant on a host, and the .deb of it.
# Included by the top-level CMakeLists.txt after every target exists.
#
#   cmake --build build && cmake --install build --prefix /usr   # as root, on a host
#   cpack --config build/CPackConfig.cmake -B OUT   # OUT/coworker_<version>_<arch>.deb
#
# What goes where (docs/OPERATIONS.md, "Installing"):
#   <prefix>/bin/coworker, coworker-cli, coworker-bench   the three executables, nothing else
#   /lib/systemd/system/coworker.service                  the unit, ExecStart naming <prefix>/bin
#   /etc/default/coworker                                 the unit's command line (a conffile)
#   <prefix>/share/doc/coworker/                          README.md and docs/ (flat)
# The data dir, /var/lib/coworker, is made by systemd at first start
# (StateDirectory=). The status page (GET /) is compiled into coworker.
include(GNUInstallDirs)

# Absolute, not under the prefix: where Debian 12 packages put units (/lib;
# they move to /usr/lib only after bookworm) and service defaults. systemd
# reads /lib/systemd/system whatever --prefix the executables went to.
set(COWORKER_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH
    "Where cmake --install and the .deb put coworker.service")
set(COWORKER_ENVIRONMENT_FILE "/etc/default/coworker" CACHE FILEPATH
    "The environment file coworker.service reads its command line from")

# cpack and `ninja install` package what is built, and never compile: a
# process test runs cpack, and must not start a build of the whole tree.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS coworker coworker-cli coworker-bench
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md" PATTERN "*.png")

# The unit names the install-time prefix (--prefix, or /usr under cpack), so
# it is written when installing; the environment file is kept if it exists,
# so a reinstall never overwrites a host's edits (dpkg does the same for the
# conffile).
install(CODE "
  set(COWORKER_PACKAGE_DIR \"${CMAKE_CURRENT_LIST_DIR}\")
  set(COWORKER_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(COWORKER_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  set(COWORKER_SYSTEMD_UNIT_DIR \"${COWORKER_SYSTEMD_UNIT_DIR}\")
  set(COWORKER_ENVIRONMENT_FILE \"${COWORKER_ENVIRONMENT_FILE}\")")
install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/install_host_files.cmake)

# The .deb. Depends: computed by dpkg-shlibdeps (dpkg-dev) from the
# executables' shared libraries (liburing, fmt, simdjson, libstdc++, libc).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME coworker)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Coworker")
set(CPACK_PACKAGE_CONTACT
    "Seed 030f6ff1 maintainers <maintainers@users.noreply.r-seed-030f6ff1.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sharded Paxos log, one participant per host")
set(CPACK_PACKAGE_DESCRIPTION
    "Coworker is an atomic log partitioned on an identifier into buckets, each\n"
    "bucket replicated on three processes, membership decided by a Paxos log.\n"
    "This package holds the participant (coworker, with its systemd unit and\n"
    "/etc/default/coworker), the command-line client and the load generator.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # coworker_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(coworker_conffiles ${CMAKE_CURRENT_BINARY_DIR}/package/conffiles)
file(WRITE ${coworker_conffiles} "${COWORKER_ENVIRONMENT_FILE}\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${coworker_conffiles})
include(CPack)
