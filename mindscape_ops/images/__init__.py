"""Local service images, built by the product with no container registry: `mindscape images
build` and the missing images `up` builds.

The recipes (`recipes/<service>.toml`), the files laid over the Debian base (`rootfs/`) and the
script run once in it (`prepare-rootfs.sh`) ship inside the package, so a plain `pip install`
builds what a checkout builds. `recipe.py` reads them, `choice.py` decides what to build (pure),
`build.py` builds (with `rootfs.py` for the Debian base, `gobuild.py` for Go programs) and
`mirror.py` finds the Debian mirror in the machine's apt configuration.
"""
