"""changevg package."""
