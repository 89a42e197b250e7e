"""The GPU catalog: names resolve to one product or say why not; MIG slices hold what NVML reports."""

from __future__ import annotations

import pytest

from policy import catalog


@pytest.mark.parametrize(
    ("name", "product", "mib"),
    [
        # NVML names, GFD nvidia.com/gpu.product labels (with -SHARED under time-slicing), what users type
        ("NVIDIA GH200 480GB", "GH200-96GB", 97871),
        ("NVIDIA-GH200-144G-HBM3e", "GH200-144GB", 146831),
        ("NVIDIA-H200-NVL", "H200-NVL", 143771),
        ("NVIDIA-H20", "H20", 97871),
        ("Tesla-V100-SXM2-16GB", "V100-16GB", 16160),
        ("Tesla V100-PCIE-32GB", "V100-32GB", 32510),
        ("NVIDIA-A40-SHARED", "A40", 46068),
        ("NVIDIA-L40", "L40", 46068),
        ("NVIDIA L20", "L20", 46068),
        ("NVIDIA-RTX-6000-Ada-Generation", "RTX-6000-Ada", 46068),  # ECC on; 49140 MiB with ECC off
        ("NVIDIA RTX A6000", "RTX-A6000", 46068),
        ("NVIDIA-A800-SXM4-80GB", "A800-80GB", 81920),
        ("NVIDIA A800 40GB PCIe", "A800-40GB", 40960),
        ("NVIDIA-H800", "H800-80GB", 81559),
        ("NVIDIA-H100-NVL", "H100-NVL", 95830),
        ("NVIDIA-A100-SXM4-80GB", "A100-80GB", 81920),
    ],
)
def test_product_names_resolve_to_nvml_memory(name: str, product: str, mib: int) -> None:
    found = catalog.resolve(name)
    assert (found.status, found.product and found.product.name, found.product and found.product.memory_mib) == (
        "known",
        product,
        mib,
    )


@pytest.mark.parametrize("name", ["A100", "NVIDIA A100", "V100", "GH200", "A800"])
def test_a_name_that_fits_several_products_is_not_resolved(name: str) -> None:
    found = catalog.resolve(name)
    assert found.status == "ambiguous" and found.product is None and len(found.candidates) == 2
    assert catalog.lookup(name) is None
    assert found.hint.startswith("name the variant: ")


def test_bare_a100_asks_for_the_variant_with_both_memories() -> None:
    assert catalog.resolve("A100").hint == "name the variant: A100-40GB (40.0 GiB), A100-80GB (80.0 GiB)"


def test_a_typo_in_a_gfd_label_gets_a_did_you_mean_in_label_form() -> None:
    found = catalog.resolve("NVIDIA-H100-80GB-HBM33")
    assert found.status == "unknown" and found.suggestion == "NVIDIA-H100-80GB-HBM3"


def test_a_name_far_from_any_product_gets_no_guess() -> None:
    found = catalog.resolve("Radeon-MI300X")
    assert (found.status, found.suggestion) == ("unknown", "")


def test_no_name_is_absent() -> None:
    assert catalog.resolve(None).status == "absent" and catalog.resolve("  ").status == "absent"


@pytest.mark.parametrize(
    ("product", "profile", "slices", "gib"),
    [
        ("A100-80GB", "1g.10gb", 1, 9.5),
        ("A100-80GB", "1g.10gb+me", 1, 9.5),
        ("A100-80GB", "2g.20gb", 2, 19.5),
        ("A100-80GB", "3g.40gb", 4, 39.25),
        ("A100-80GB", "7g.80gb", 8, 79.0),
        ("H100-80GB", "3g.40gb", 4, 39.5),
        ("H200", "3g.71gb", 4, 69.5),
        ("H200", "7g.141gb", 8, 139.75),
        ("H100-NVL", "1g.12gb", 1, 10.62),
        ("H100-NVL", "3g.47gb", 4, 46.12),
        ("H100-NVL", "7g.94gb", 8, 92.62),
        ("GH200-96GB", "1g.12gb", 1, 11.0),
        ("GH200-96GB", "7g.96gb", 8, 93.0),
        ("A100-40GB", "2g.10gb", 2, 9.62),
        ("A100-40GB", "7g.40gb", 8, 39.25),
        ("GH200-144GB", "1g.18gb", 1, 17.5),
        ("B200", "2g.45gb", 2, 44.25),
        ("A30", "2g.12gb", 2, 11.39),
        ("A30", "4g.24gb", 4, 22.79),
    ],
)
def test_a_mig_slice_holds_what_nvml_reports_not_its_name(product: str, profile: str, slices: int, gib: float) -> None:
    entry = catalog.lookup(product)
    assert entry is not None and profile in entry.mig
    assert (entry.mig_memory_slices(profile), entry.mig_slice_gb(profile)) == (slices, gib)


def test_every_mig_product_has_its_real_slice_memory_below_the_names() -> None:
    for product in catalog.products():
        for profile in product.mig:
            assert product.mig_slice_gb(profile) < catalog.mig_profile_memory_gb(profile), (product.name, profile)
            assert product.mig_slice_gb(profile) <= product.memory_gb


def test_every_product_names_its_source() -> None:
    for product in catalog.products():
        assert product.source, product.name
        assert not product.mig or product.mig_memory_source, product.name


def test_media_extension_profiles_allow_one_instance() -> None:
    for product in catalog.products():
        for profile, count in product.mig.items():
            if profile.endswith("+me"):
                assert count == 1 and profile.removesuffix("+me") in product.mig, (product.name, profile)


def test_largest_memory_is_the_b200() -> None:
    assert catalog.largest_memory_gb() == pytest.approx(183359 / 1024)


def test_a_family_name_matches_the_real_device_of_that_family() -> None:
    from policy.capacity.match import same_product

    assert same_product("A100", "NVIDIA A100-SXM4-80GB")
    assert same_product("GH200", "NVIDIA-GH200-480GB")
    assert not same_product("A100", "NVIDIA H100 80GB HBM3")
    assert same_product("NVIDIA-L40-SHARED", "NVIDIA L40")


@pytest.mark.parametrize(
    ("profile", "gib"), [("1g.10gb", 9.5), ("3g.40gb", 39.25), ("1g.12gb", 10.62), ("3g.71gb", 69.5), ("2g.99gb", 99.0)]
)
def test_a_slice_of_an_unknown_product_holds_the_least_any_product_gives_that_profile(profile: str, gib: float) -> None:
    # A MIG resource (nvidia.com/mig-1g.10gb) on a node whose product is not given.
    assert catalog.mig_slice_gb(profile) == gib


def test_the_catalog_refuses_a_name_that_would_mean_two_products(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "gpus.yaml"
    bad.write_text(
        "products:\n"
        "  X1: {memory_mib: 1024, source: test, aliases: [Shared Name]}\n"
        "  X2: {memory_mib: 2048, source: test, aliases: [shared-name]}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(catalog, "CATALOG_FILE", bad)
    catalog._catalog.cache_clear()
    try:
        with pytest.raises(ValueError, match="'shared-name' of X2 is already a name of X1"):
            catalog._catalog()
    finally:
        monkeypatch.undo()
        catalog._catalog.cache_clear()


def test_every_cloud_node_label_value_names_one_catalog_product() -> None:
    from policy.catalog import _node_label_tables, product_from_labels, resolve

    tables = _node_label_tables()
    assert "cloud.google.com/gke-accelerator" in tables
    for key, values in tables.items():
        for value, product in values.items():
            assert resolve(product).status == "known", (key, value, product)
            assert product_from_labels({key: value}) == (key, product)
    # GPU Feature Discovery's label wins over a cloud's; an unlisted cloud value stays as written.
    both = {"nvidia.com/gpu.product": "NVIDIA-L4", "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert product_from_labels(both) == ("nvidia.com/gpu.product", "NVIDIA-L4")
    assert product_from_labels({"cloud.google.com/gke-accelerator": "nvidia-tesla-p4"})[1] == "nvidia-tesla-p4"  # type: ignore[index]
