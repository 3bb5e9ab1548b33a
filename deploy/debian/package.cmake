# The Debian package (make package): CPack's DEB generator over the install() rules.
# Runtime Depends come from dpkg-shlibdeps (the libraries the binaries link) plus adduser
# (postinst creates the ccgate system user). Build with -DCMAKE_INSTALL_PREFIX=/usr.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ccgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ccgate maintainers <maintainers@ccgate.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "confidential-inference gateway with RA-TLS sidecars")
set(CPACK_PACKAGE_DESCRIPTION "ccgate lets an unmodified application talk to an inference service inside
a confidential VM (AMD SEV-SNP or Intel TDX, optionally with an NVIDIA GPU in
confidential-computing mode). ccgate-client verifies the server's hardware
evidence against the user's policy before forwarding a byte; ccgate-server
produces that evidence bound to its TLS key; ccgate-worker is an
OpenAI-compatible inference worker; ccgate-kbs releases sealed models' keys
to attested TEEs; ccgate is the command-line tool.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst ${CMAKE_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR}/deb)

# Debian's documentation rules: copyright and a compressed changelog in the doc folder.
install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
set(CG_CHANGELOG_GZ ${CMAKE_BINARY_DIR}/deploy/changelog.gz)
add_custom_command(OUTPUT ${CG_CHANGELOG_GZ}
    COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/deploy/debian/changelog > ${CG_CHANGELOG_GZ}
    DEPENDS ${CMAKE_SOURCE_DIR}/deploy/debian/changelog VERBATIM)
add_custom_target(cg_changelog ALL DEPENDS ${CG_CHANGELOG_GZ})
install(FILES ${CG_CHANGELOG_GZ} DESTINATION ${CMAKE_INSTALL_DOCDIR})
include(CPack)
