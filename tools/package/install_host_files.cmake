# Run by `cmake --install` and cpack (install(SCRIPT) in package.cmake, which
# sets the COWORKER_* variables first): writes coworker.service for the
# install-time prefix and installs /etc/default/coworker unless it is there.
# DESTDIR is honoured (cpack stages the package under it).
set(unit "$ENV{DESTDIR}${COWORKER_SYSTEMD_UNIT_DIR}/coworker.service")
set(COWORKER_BIN_DIR "${CMAKE_INSTALL_PREFIX}/${COWORKER_BINDIR}")
set(COWORKER_DOC_DIR "${CMAKE_INSTALL_PREFIX}/${COWORKER_DOCDIR}")
message(STATUS "Installing: ${unit}")
configure_file("${COWORKER_PACKAGE_DIR}/coworker.service.in" "${unit}" @ONLY)
file(CHMOD "${unit}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${COWORKER_SYSTEMD_UNIT_DIR}/coworker.service")

set(environment "$ENV{DESTDIR}${COWORKER_ENVIRONMENT_FILE}")
if(EXISTS "${environment}")
  message(STATUS "Keeping: ${environment} (edited on this host, perhaps)")
else()
  # file(INSTALL) adds DESTDIR itself, prints "Installing:" and records the
  # file in the manifest.
  get_filename_component(environment_dir "${COWORKER_ENVIRONMENT_FILE}" DIRECTORY)
  get_filename_component(environment_name "${COWORKER_ENVIRONMENT_FILE}" NAME)
  file(INSTALL "${COWORKER_PACKAGE_DIR}/coworker.env" DESTINATION "${environment_dir}"
       RENAME "${environment_name}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
