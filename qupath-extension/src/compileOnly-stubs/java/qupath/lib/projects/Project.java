package qupath.lib.projects;

import java.util.List;
import qupath.lib.images.ImageData;

/** Stand-in: qupath-core Project. */
public interface Project<T> {
    List<ProjectImageEntry<T>> getImageList();
    ProjectImageEntry<T> getEntry(ImageData<T> imageData);
}
